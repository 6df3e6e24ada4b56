"""Controller for a robotic seam-welding work cell."""
