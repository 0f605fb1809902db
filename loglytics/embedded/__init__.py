"""The embedded stack: a real Kafka-compatible broker, ClickHouse engine and llama.cpp server on loopback."""
