#!/bin/sh
# Alertmanager 0.25 reads no environment variables in its configuration (url_file came later),
# so this writes the webhook URLs into a copy of alertmanager.yml, then runs Alertmanager on it
# with the arguments given. ALERTMANAGER_BIN, ALERTMANAGER_TEMPLATE and ALERTMANAGER_CONFIG
# point elsewhere than the official image's paths (the tests run the Debian binary).
set -eu
: "${ALERTMANAGER_WEBHOOK_URL:?set ALERTMANAGER_WEBHOOK_URL to the URL that receives alerts}"
critical=${ALERTMANAGER_CRITICAL_WEBHOOK_URL:-$ALERTMANAGER_WEBHOOK_URL}
template=${ALERTMANAGER_TEMPLATE:-/etc/alertmanager/alertmanager.yml}
config=${ALERTMANAGER_CONFIG:-/tmp/alertmanager.yml}

literal() {  # $1 as a sed replacement: \, & and the | delimiter escaped
  printf '%s\n' "$1" | sed -e 's/[\\&|]/\\&/g'
}

umask 077  # the URLs often carry a token
sed -e "s|http://alertmanager-webhook.invalid/|$(literal "$ALERTMANAGER_WEBHOOK_URL")|" \
    -e "s|http://alertmanager-critical-webhook.invalid/|$(literal "$critical")|" \
    "$template" > "$config"
exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" --config.file="$config" "$@"
