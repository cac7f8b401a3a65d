"""rnnkit's version, in a module that imports nothing, so that any part of the package (the kernel
cache key, ``rnnkit --version``) can read it without importing the whole package."""
__version__ = "0.1.0"
