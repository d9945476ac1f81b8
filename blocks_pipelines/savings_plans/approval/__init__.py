"""What the back office reads and does in Dagster: the approval run, the live status view, the packet and its curve."""
