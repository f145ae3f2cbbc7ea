#!/bin/bash
# Real captures with key logs for tests/keys (cipher suites the shared captures lack).
# Usage (root, for tcpdump on lo): ./make_captures.sh [OUTDIR]. Loopback only; the
# throwaway certificates are made in a temp dir and deleted. See README.md.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/ec.key" 2>/dev/null
openssl req -x509 -new -key "$TMP/ec.key" -out "$TMP/ec.pem" -days 2 -subj /CN=localhost 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/rsa.key" -out "$TMP/rsa.pem" -days 2 \
  -subj /CN=localhost 2>/dev/null
# A leaf with 500 subjectAltNames (~19 KB): its Certificate message spans several TLS
# records; one with 250 (~9 KB) spans many QUIC Handshake packets.
python3 -c "print('subjectAltName=DNS:localhost,' + ','.join('DNS:host%d.big-certificate.example.test' % i for i in range(500)))" > "$TMP/san.ext"
openssl req -new -key "$TMP/ec.key" -out "$TMP/big.csr" -subj /CN=localhost 2>/dev/null
openssl x509 -req -in "$TMP/big.csr" -signkey "$TMP/ec.key" -out "$TMP/big.pem" -days 2 \
  -extfile "$TMP/san.ext" 2>/dev/null
cp "$TMP/ec.key" "$TMP/big.key"
# aioquic holds a whole flight in 16 KiB: 250 names (~9 KB) for QUIC.
python3 -c "print('subjectAltName=DNS:localhost,' + ','.join('DNS:host%d.big-certificate.example.test' % i for i in range(250)))" > "$TMP/mid.ext"
openssl x509 -req -in "$TMP/big.csr" -signkey "$TMP/ec.key" -out "$TMP/mid.pem" -days 2 \
  -extfile "$TMP/mid.ext" 2>/dev/null
cp "$TMP/ec.key" "$TMP/mid.key"
PORT=24430

cap() {  # cap NAME FILTER COMMAND...: capture lo while COMMAND runs
  local name=$1 filter=$2; shift 2
  rm -f "$OUT/$name.pcap" "$OUT/$name.keys"
  tcpdump -i lo -s 0 -U -w "$OUT/$name.pcap" "$filter" >"$TMP/tcpdump.log" 2>&1 &
  local tpid=$!
  sleep 1
  "$@"
  sleep 1
  kill "$tpid"; wait "$tpid" 2>/dev/null || true
}

tls() {  # tls NAME CERT SERVER_ARGS -- CLIENT_ARGS
  local name=$1 cert=$2; shift 2
  local sargs=() cargs=()
  while [ "$1" != -- ]; do sargs+=("$1"); shift; done; shift
  cargs=("$@")
  PORT=$((PORT + 1))
  run() {
    timeout 10 openssl s_server -accept "$PORT" -cert "$TMP/$cert.pem" -key "$TMP/$cert.key" \
      -www -naccept 1 "${sargs[@]}" >"$TMP/server.log" 2>&1 &
    local spid=$!
    sleep 0.5
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 openssl s_client -connect "127.0.0.1:$PORT" \
      -servername localhost -ign_eof -keylogfile "$OUT/$name.keys" "${cargs[@]}" >"$TMP/client.log" 2>&1 || true
    wait "$spid" 2>/dev/null || true
  }
  cap "$name" "tcp port $PORT" run
}

quic() {  # quic NAME SUITE VERSION [CERT]
  PORT=$((PORT + 1))
  local name=$1 suite=$2 version=$3 cert=${4:-ec}
  run() { timeout 10 python3 "$HERE/quic_pair.py" "$PORT" "$suite" "$version" "$OUT/$name.keys" "$TMP/$cert.pem" "$TMP/$cert.key"; }
  cap "$name" "udp port $PORT" run
}

# TLS 1.3: the suites the shared captures lack (they have 0x1301 and 0x1302).
tls tls13_chacha20_h2 ec -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -alpn h2,http/1.1 -- \
  -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -alpn h2,http/1.1
tls tls13_aes128ccm_h2 ec -ciphersuites TLS_AES_128_CCM_SHA256 -alpn h2 -- \
  -ciphersuites TLS_AES_128_CCM_SHA256 -alpn h2,http/1.1
tls tls13_aes128ccm8_http11 ec -ciphersuites TLS_AES_128_CCM_8_SHA256 -alpn http/1.1 -- \
  -ciphersuites TLS_AES_128_CCM_8_SHA256 -alpn h2,http/1.1
# TLS 1.3 with record padding (RFC 8446 §5.4) and with a Certificate over several records.
tls tls13_padded_h2 ec -record_padding 512 -alpn h2 -- -alpn h2,http/1.1
tls tls13_bigcert_h2 big -alpn h2 -- -alpn h2,http/1.1
# TLS 1.2 NPN (client's NextProtocol after its ChangeCipherSpec) over each record protection.
NPN=(-nextprotoneg h2,http/1.1)
tls npn_tls12_c02b_gcm ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES128-GCM-SHA256
tls npn_tls12_cca9_chacha ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-CHACHA20-POLY1305
tls npn_tls12_c009_cbc_sha1_etm ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES128-SHA
tls npn_tls12_c009_cbc_sha1_mte ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES128-SHA -no_etm
tls npn_tls12_c023_cbc_sha256_mte ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES128-SHA256 -no_etm
tls npn_tls12_c024_cbc_sha384_mte ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES256-SHA384 -no_etm
tls npn_tls12_c024_cbc_sha384_etm ec -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-ECDSA-AES256-SHA384
tls npn_tls12_003d_rsa_cbc_sha256_mte rsa -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher AES256-SHA256 -no_etm
tls npn_tls12_c030_rsa_gcm_sha384 rsa -tls1_2 "${NPN[@]}" -- -tls1_2 "${NPN[@]}" -cipher ECDHE-RSA-AES256-GCM-SHA384
# TLS 1.0 / 1.1 (MD5+SHA-1 PRF; TLS 1.0 chains CBC IVs), allowed at security level 0.
tls npn_tls10_c009_cbc_sha1_mte ec -tls1 -cipher 'ALL:@SECLEVEL=0' "${NPN[@]}" -- \
  -tls1 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' "${NPN[@]}" -no_etm
tls npn_tls11_c00a_cbc_sha1_etm ec -tls1_1 -cipher 'ALL:@SECLEVEL=0' "${NPN[@]}" -- \
  -tls1_1 -cipher 'ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0' "${NPN[@]}"
# QUIC Handshake space with the suites and versions the shared captures lack (0x1302 only).
quic quic_v1_chacha20 1303 1
quic quic_v2_chacha20 1303 2
quic quic_v1_aes128gcm 1301 1
quic quic_v1_bigcert 1302 1 mid
ls -l "$OUT"/*.pcap
