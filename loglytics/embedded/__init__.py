"""The embedded stack: a Kafka-compatible broker, ClickHouse and llama.cpp on loopback."""
