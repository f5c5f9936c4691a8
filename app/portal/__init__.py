"""/portal: a client business's own messages, for its signed-in people."""
