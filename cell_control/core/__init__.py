"""Pure-Python cell logic: state machines, controllers, kinematics, models. Never imports rclpy."""
