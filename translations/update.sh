#!/usr/bin/env bash
# Re-extract every marked string into translations/messages.pot and merge it into each catalog (issue 7).
# No compile step: the app compiles the .po files into its instance folder at start-up (cfm/i18n.py).
# New strings arrive untranslated, changed ones fuzzy; translate them, then run
#   pytest tests/cfm/i18n
# which fails while a required catalog is incomplete, fuzzy or has a broken placeholder.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-$(command -v pybabel || echo .venv/bin/pybabel)}"
LOCALES="${LOCALES:-fr es ar fa_AF ps uk ru so sw am ti}"

# Keywords: _, gettext, ngettext, pgettext and npgettext (with a context) are Babel's defaults;
# _l / lazy_gettext are the lazy forms used in forms.
"$PYBABEL" extract -F translations/babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 \
    -c TRANSLATORS: --project=CFM --no-wrap -o translations/messages.pot .

for locale in $LOCALES; do
    if [ -f "translations/$locale/LC_MESSAGES/messages.po" ]; then
        "$PYBABEL" update -i translations/messages.pot -d translations -l "$locale" --no-wrap --ignore-obsolete
    else
        "$PYBABEL" init -i translations/messages.pot -d translations -l "$locale" --no-wrap
    fi
done
