"""Pure analysis of a finished (or running) study: tables and scene layouts that the views draw.
Nothing here imports a widget or plotting library, so all of it is tested as data."""
