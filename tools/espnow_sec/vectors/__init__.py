"""Test vectors: generate ``vectors/compat.json`` from a seed and check a vector file.

``compute`` turns a case's inputs into the whole case with the reference implementation;
``generate`` picks the inputs; ``check`` recomputes a file and names the first difference.
The JSON schema is documented in ``vectors/README.md``.
"""
