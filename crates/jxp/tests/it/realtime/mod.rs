//! The realtime WebSocket feed, through real WebSocket connections to the real server.
