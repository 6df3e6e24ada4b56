"""Parts moving in and out: handoff protocol, AGV fleet and navigation, docking, conveyor tracking (no rclpy)."""
