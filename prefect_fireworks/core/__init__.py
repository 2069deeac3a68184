"""The FireWorks model without I/O: states and their rules, documents as pydantic models, DictMods.

Imports nothing else of the project; every other layer builds on it.
"""
