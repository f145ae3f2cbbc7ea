#!/usr/bin/env bash
# verify.sh FILE...: what tshark shows for each capture, one line per file:
#   NAME SIZE | hello: FRAME:TYPE[ALPN] ... | keys: ... | alerts: FRAME:DESC ... | npn: ...
# "hello" is exactly
#   tshark -r F -Y 'tls.handshake.type==1 || tls.handshake.type==2' -T fields \
#          -e frame.number -e tls.handshake.type -e tls.handshake.extensions_alpn_str
# condensed (TYPE 1 = ClientHello, 2 = ServerHello; several types = one frame holding several
# handshake messages).  "keys" repeats it with X.keys (or the file's own DSB) and adds
# EncryptedExtensions (8) and NextProtocol (67), so an encrypted selection shows up.
set -u
condense() {
    awk -F'\t' '{ s = $1 ":" $2; if ($3 != "") s = s "[" $3 "]"; printf "%s ", s }'
}
for f in "$@"; do
    b=$(basename "$f")
    k=${f%%.pcap*}
    k=${k%_dsb}.keys
    hello=$(tshark -r "$f" -Y 'tls.handshake.type==1 || tls.handshake.type==2' -T fields \
        -e frame.number -e tls.handshake.type -e tls.handshake.extensions_alpn_str 2>/dev/null |
        condense)
    # alerts in the clear and the server's NPN list (ServerHello extension 13172), one pass
    extra=$(tshark -r "$f" -Y 'tls.alert_message.desc || tls.handshake.extensions_npn' -T fields \
        -e frame.number -e tls.alert_message.desc -e tls.handshake.extensions_npn 2>/dev/null)
    alerts=$(awk -F'\t' '$2 != "" { printf "%s:%s ", $1, $2 }' <<<"$extra")
    npn=$(awk -F'\t' '$3 != "" { printf "%s:[%s] ", $1, $3 }' <<<"$extra")
    line="$b $(stat -c %s "$f") | hello: $hello"
    if [ -s "$k" ] || [[ $b == *_dsb.pcapng ]]; then
        opts=()
        [ -s "$k" ] && [[ $b != *_dsb.pcapng ]] && opts=(-o "tls.keylog_file:$k")
        keyed=$(tshark -r "$f" "${opts[@]}" -Y 'tls.handshake.type in {1,2,8,67}' -T fields \
            -e frame.number -e tls.handshake.type -e tls.handshake.extensions_alpn_str \
            -e tls.handshake.npn_selected_protocol 2>/dev/null |
            awk -F'\t' '{ s = $1 ":" $2; a = $3; if ($4 != "") a = a (a == "" ? "" : ",") "npn=" $4
                          if (a != "") s = s "[" a "]"; printf "%s ", s }')
        line+="| keys: $keyed"
    fi
    [ -n "$alerts" ] && line+="| alerts: $alerts"
    [ -n "$npn" ] && line+="| npn: $npn"
    echo "$line"
done
