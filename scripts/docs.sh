#!/usr/bin/env bash
# Builds the docs book (mkdocs.yml, docs/book/) into target/site/ with MkDocs in strict mode: a
# broken link or anchor, a page missing from the nav, an included file that does not exist, or a
# warning from the Python API reference fails the build. MkDocs and its plugins (pinned in
# scripts/requirements-docs.txt) live in their own venv, target/venv-docs, installed once.
#
#   scripts/docs.sh            # build into target/site/
#   scripts/docs.sh serve      # live preview on http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv-docs
if ! "$venv/bin/python" -c 'import mkdocs, mkdocstrings, mkdocstrings_handlers.python, pymdownx' 2>/dev/null; then
  echo "setting up $venv (scripts/requirements-docs.txt)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-docs.txt
fi
if [ "${1:-}" = serve ]; then
  exec "$venv/bin/mkdocs" serve --strict
fi
"$venv/bin/mkdocs" build --strict --site-dir target/site
