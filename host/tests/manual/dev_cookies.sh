#!/usr/bin/env bash
# Manual check (needs chromium-headless-shell, not run by CI): does Chromium keep nosd's
# `__Host-` + Secure cookies on plain-HTTP loopback origins? A stub server sets a cookie with
# exactly nosd's attributes, redirects to a page that echoes the Cookie header it received, and
# headless Chromium dumps that page.
set -euo pipefail
PORT=${PORT:-18731}
python3 - "$PORT" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/set":
            self.send_response(302)
            self.send_header("Set-Cookie", "__Host-nos_sid=" + "ab"*32 + "; Path=/; Secure; SameSite=Strict; HttpOnly")
            self.send_header("Set-Cookie", "__Host-nos_csrf=" + "cd"*32 + "; Path=/; Secure; SameSite=Strict")
            self.send_header("Location", "/check")
            self.end_headers()
        else:
            body = ("<pre>cookie: %s</pre>" % self.headers.get("Cookie", "<none>")).encode()
            self.send_response(200); self.send_header("Content-Type", "text/html"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
STUB=$!
trap 'kill $STUB' EXIT
sleep 0.5
for host in 127.0.0.1 localhost; do
  echo "== http://$host:$PORT"
  chromium-headless-shell --no-sandbox --disable-gpu --dump-dom "http://$host:$PORT/set" 2>/dev/null | grep -o 'cookie: [^<]*'
done
# Control: a non-loopback name (resolved to 127.0.0.1 inside Chromium only) is not a secure
# context, so the same cookies must be dropped there.
echo "== http://nas.test:$PORT (control, expect <none>)"
chromium-headless-shell --no-sandbox --disable-gpu --host-resolver-rules="MAP nas.test 127.0.0.1" \
  --dump-dom "http://nas.test:$PORT/set" 2>/dev/null | grep -o 'cookie: [^<]*'
