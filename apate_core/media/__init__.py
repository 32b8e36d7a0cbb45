"""Media intake: decide what a file is by its content, decode it safely, stream its frames."""
