"""Sphinx configuration of the complex-synapses documentation site.

Sphinx rather than mkdocs: autodoc reads the docstrings of the installed package (with
their math, rendered by MathJax), and the pages stay Markdown through MyST. Built with
``make docs`` (warnings are errors) into ``docs/_build/html``.
"""

from importlib.metadata import version as _version

project = "complex-synapses"
author = "the complex-synapses developers"
copyright = "2026, " + author
release = _version("complex-synapses")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",  # docs/cli.md: every command and option, from the parsers
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "results", "figures"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3  # links to a page's headings: [text](page.md#a-heading)

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "complex-synapses"
html_static_path: list[str] = []
