#!/bin/sh
echo "$GREETING: $(cat /etc/kiln-demo), jq $(jq --version)"
