"""Writing and fingerprinting files: atomic all-or-nothing publication of outputs (`atomic`), content
hashes for caches and provenance (`hashing`), and the regular-file check for user-named inputs (`user_files`)."""
