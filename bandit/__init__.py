"""The Test domain: definitions, decisions, rewards and what Scout learned from them."""
