"""The weld: seam measurements and profiles, the closed-loop adjuster, weld traces and records (no rclpy)."""
