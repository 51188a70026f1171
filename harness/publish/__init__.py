"""Publishing a board: the static page (jinja2, plots inline), its plots (matplotlib) and the README block.
The only place jinja2 templates and matplotlib are used."""
