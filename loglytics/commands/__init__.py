"""CLI commands that act as Kafka clients (they need no running worker of their own)."""
