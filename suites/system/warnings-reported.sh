#!/bin/sh
# SC-W01: a portal's warning does not fail a case, yet the case carries it in
# both result files, byte for byte (the seed's U+00A0 before "V3").
set -eu
json="$OUT/results.json"
xml="$OUT/junit.xml"
text=$(printf '数字证书安全控件-ftsccactrl\302\240V3:未安装')
passed=$(jq -r --arg t "$text" '[.cases[] | select(.ids | index("SC-W01"))
	| select(.status == "passed") | select(any(.warnings[]?; .message == $t))] | length' "$json")
[ "$passed" -ge 1 ] || { echo "no passed SC-W01 case carries the warning in $json"; exit 1; }
total=$(jq -r '.summary.warnings' "$json")
[ "$total" -ge "$passed" ] || { echo "summary.warnings ($total) counts fewer than the cases' warnings"; exit 1; }
# A case without a portal warning carries none (a middleware finding aside).
jq -e '[.cases[] | select(.ids | index("SZ-LOGIN-OK")) | .warnings // []
	| map(select(.message | startswith("middleware finding") | not)) | length] | (add // 0) == 0' \
	"$json" >/dev/null || { echo "a case that met no warning lists one"; exit 1; }
# OpenSC cuts a long Chinese token label at 32 bytes inside a character: the
# case passes and names the finding; SoftHSM's and the APDU backend's never.
if jq -e '[.cases[] | select(.kind == "opensc" and .status == "passed")] | length > 0' "$json" >/dev/null; then
	jq -e '[.cases[] | select(.kind == "opensc" and .status == "passed") | .warnings // []
		| any(.message | test("^middleware finding \\(opensc\\): the token label is not valid UTF-8"))]
		| any' "$json" >/dev/null || { echo "no opensc case names the cut label"; exit 1; }
fi
jq -e '[.cases[] | select(.kind != "opensc") | .warnings // [] | .[]
	| select(.message | startswith("middleware finding"))] | length == 0' "$json" >/dev/null ||
	{ echo "a label finding on a kind whose labels are whole"; exit 1; }
# JUnit: a property and a line of output on the passed testcase.
grep -q "<property name=\"warning\" value=\"$text\"/>" "$xml" || { echo "$xml has no warning property"; exit 1; }
grep -q "WARNING (step: i信 environment check): $text" "$xml" || { echo "$xml has no warning output"; exit 1; }
xmllint --noout "$xml" || { echo "$xml is not well-formed XML"; exit 1; }
echo "warnings: $passed SC-W01 case(s) carry the warning in results.json and junit.xml"
