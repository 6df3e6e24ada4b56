"""Arm motion: UR kinematics, joint trajectories, the weld path and the moves around it (no rclpy)."""
