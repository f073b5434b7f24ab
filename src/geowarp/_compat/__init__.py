"""Array-API namespaces geowarp provides itself, for libraries array-api-compat lacks.

Each submodule imports its framework at module level, so it is imported only
once `geowarp._namespace.array_namespace` has seen an array of that library;
this package itself imports nothing.
"""
