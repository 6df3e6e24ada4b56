"""MuJoCo scene building and stepping, weld process model. Never imports rclpy."""
