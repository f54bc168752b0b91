"""What every part of Scout needs and nothing Scout-specific: errors, the Redis connection and
script runner, logging and metrics plumbing. Imports nothing from the layers above."""
