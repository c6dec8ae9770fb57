"""Telegram: the durable notification outbox and its sender, commands, heartbeat, dead-man."""
