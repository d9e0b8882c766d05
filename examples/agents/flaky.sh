#!/bin/sh
# A demo agent that fails the way real ones do, to show retries and blockers:
# - step `fetch` fails its first attempt (a timeout), then succeeds when given the retry prompt;
# - step `publish` always fails (the endpoint refuses), so it becomes a blocker.
case $STEP_ID in
  fetch)
    if [ "$STEP_ATTEMPT" = 1 ]; then
      echo "price source A timed out after 30 s" >&2
      exit 1
    fi
    mkdir -p data
    printf 'BTC 1\nETH 2\n' > data/prices.md
    echo "attempt $STEP_ATTEMPT got the retry prompt: $1"
    ;;
  publish)
    echo "publishing endpoint refused the upload: HTTP 403" >&2
    exit 4
    ;;
  *)
    echo "unknown step $STEP_ID" >&2
    exit 2
    ;;
esac
