"""Helpers shared by test folders (importable as `helpers.*`: pyproject's pytest `pythonpath`
puts tests/ on the path)."""
