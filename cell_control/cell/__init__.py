"""The cell as a whole: the part-cycle state machine, part ledger, KPIs, recipes, description (no rclpy)."""
