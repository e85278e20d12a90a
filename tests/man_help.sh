#!/bin/sh
# `ferry help [COMMAND]` and ferry(1) say the same thing: the same commands,
# the same options (in the man page's section for that command, and no
# others), each man page entry starting with the help's one-line
# description, each command's usage line as its .SS title and its
# description as the first paragraph.  doc/ferry.1 says how it is laid out.
. "$(dirname "$0")/tap.sh"

man_page=$src/doc/ferry.1

# Both extractors print records "SECTION<TAB>KIND<TAB>KEY<TAB>TEXT":
#   overview cmd  NAME             a command
#   NAME     usage USAGE           a command's usage line (help) or title (man)
#   NAME     para  -    TEXT       a command's description
#   SECTION  opt   OPTION TEXT     an option (SECTION: overview or a command)
# Whitespace is collapsed, so line breaks and double spaces do not count.

# $1: the section name for this help text (overview or a command).
help_records() {
	awk -v sect="$1" '
	function norm(s) { gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
	NR == 1 && /^usage: / { u = $0; sub(/^usage: /, "", u); print sect "\tusage\t" norm(u); state = "gap"; next }
	state == "gap" && /^$/ { state = "para"; para = ""; next }
	state == "para" && /^$/ { if (sect != "overview") print sect "\tpara\t-\t" norm(para); state = "body"; next }
	state == "para" { para = para " " $0; next }
	/^commands:/ { incmds = 1; next }
	/^$/ { incmds = 0; next }
	incmds && /^  [a-z]/ { print "overview\tcmd\t" $1; next }
	/^ +-/ {
		line = $0; sub(/^ +/, "", line)
		i = match(line, /  +/)
		if (i == 0) { print sect "\topt\t" norm(line) "\t"; next }
		print sect "\topt\t" norm(substr(line, 1, i - 1)) "\t" norm(substr(line, i))
	}
	END { if (state == "para" && sect != "overview") print sect "\tpara\t-\t" norm(para) }
	'
}

man_records() {
	awk '
	function norm(s) { gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
	function unroff(s) {
		gsub(/\\-/, "-", s); gsub(/\\f[BIRP]/, "", s); gsub(/\\\(aq/, "\047", s)
		gsub(/\\\(en/, "-", s); gsub(/\\e/, "\\", s); gsub(/\\[%&]/, "", s)
		return s
	}
	# The text a line shows: a font macro joins its arguments (the
	# alternating ones, .BR .BI ..., without spaces); other requests show
	# nothing.
	function text(line,    name, rest, n, args, joined, q) {
		if (line !~ /^[.\047]/) return unroff(line)
		name = line; sub(/^[.\047]/, "", name); sub(/[ \t].*/, "", name)
		if (name !~ /^(B|I|R|SM|SB|[BIR][BIR])$/) return ""
		rest = line; sub(/^[.\047][A-Za-z]+[ \t]*/, "", rest)
		n = 0
		while (rest != "") {
			sub(/^[ \t]+/, "", rest)
			if (rest == "") break
			if (substr(rest, 1, 1) == "\"") {
				rest = substr(rest, 2); q = index(rest, "\"")
				if (q == 0) { args[++n] = rest; rest = "" }
				else { args[++n] = substr(rest, 1, q - 1); rest = substr(rest, q + 1) }
			} else {
				q = match(rest, /[ \t]/)
				if (q == 0) { args[++n] = rest; rest = "" }
				else { args[++n] = substr(rest, 1, q - 1); rest = substr(rest, q) }
			}
		}
		joined = ""
		for (q = 1; q <= n; q++)
			joined = joined (q > 1 && length(name) == 1 ? " " : "") args[q]
		return unroff(joined)
	}
	function flush() {
		if (mode == "para") print cur "\tpara\t-\t" norm(buf)
		if (mode == "opt") print cur "\topt\t" tag "\t" norm(buf)
		mode = ""; buf = ""
	}
	/^\.\\"/ { next }
	/^\.(SH|SS|TP|PP|IP|LP|P|EX|in|SY)( |$)/ { flush() }
	# The first .SY ... .YS block of SYNOPSIS is the overview usage line.
	synopsis == 1 && /^\.YS/ { print "overview\tusage\t" norm(usage); synopsis = 2; next }
	synopsis == 1 { usage = usage " " ($0 ~ /^\.SY / ? substr($0, 5) : text($0)); next }
	/^\.SH / {
		cur = ""
		if ($2 == "OPTIONS") cur = "overview"
		if ($2 == "SYNOPSIS") synopsis = 1
		next
	}
	/^\.SS / {
		title = norm(text(".B" substr($0, 4)))
		split(title, w, " ")
		cur = w[2]
		print "overview\tcmd\t" cur
		print cur "\tusage\t" title
		mode = "para"; buf = ""
		next
	}
	/^\.TP/ { wanttag = 1; next }
	wanttag {
		wanttag = 0
		t = norm(text($0))
		if (cur != "" && t ~ /^-/) { mode = "opt"; tag = t; buf = "" }
		next
	}
	/^[.\047]/ { if (mode != "") buf = buf " " text($0); next }
	{ if (mode != "") buf = buf " " text($0) }
	END { flush() }
	' "$man_page"
}

man_all=$tap_tmp/man.tsv
man_records > "$man_all"

# $1: section; $2: the help records of that section.
compare_section() {
	sect=$1
	help_file=$2
	man_file=$tap_tmp/man-$sect.tsv
	grep "^$sect	" "$man_all" > "$man_file"

	for kind in opt cmd; do
		cut -f2,3 "$help_file" | grep "^$kind	" | sort > "$tap_tmp/h"
		cut -f2,3 "$man_file" | grep "^$kind	" | sort > "$tap_tmp/m"
		[ -s "$tap_tmp/h" ] || [ -s "$tap_tmp/m" ] || continue
		if diff "$tap_tmp/h" "$tap_tmp/m" > "$tap_tmp/d"; then
			tap_ok "$sect: the same ${kind}s in the help and ferry(1)"
		else
			tap_not_ok "$sect: the same ${kind}s in the help and ferry(1)"
			tap_diag "< help   > ferry(1)"
			tap_diag "$(cat "$tap_tmp/d")"
		fi
	done

	# Each option's man page entry starts with the help's description.
	grep "^$sect	opt	" "$help_file" > "$tap_tmp/opts"
	while IFS='	' read -r _ _ opt desc; do
		mdesc=$(awk -F '\t' -v o="$opt" '$2 == "opt" && $3 == o { print $4 }' "$man_file")
		[ -n "$mdesc" ] || continue     # reported above as a missing option
		case $mdesc in
		"$desc"*) tap_ok "$sect $opt: ferry(1) starts with the help's description" ;;
		*)
			tap_not_ok "$sect $opt: ferry(1) starts with the help's description"
			tap_diag "help:     $desc" "ferry(1): $mdesc"
			;;
		esac
	done < "$tap_tmp/opts"

	for kind in usage para; do
		h=$(awk -F '\t' -v k="$kind" '$2 == k { print $NF }' "$help_file")
		m=$(awk -F '\t' -v k="$kind" '$2 == k { print $NF }' "$man_file")
		[ -n "$h" ] || continue
		if [ "$h" = "$m" ]; then
			tap_ok "$sect: the same $kind in the help and ferry(1)"
		else
			tap_not_ok "$sect: the same $kind in the help and ferry(1)"
			tap_diag "help:     $h" "ferry(1): $m"
		fi
	done
}

if [ ! -x "$ferry" ]; then
	tap_not_ok "the built ferry is at \$FERRY_BUILD_ROOT/cmd/ferry ($ferry)"
	tap_done
	exit 1
fi

"$ferry" help | help_records overview > "$tap_tmp/help-overview.tsv"
compare_section overview "$tap_tmp/help-overview.tsv"
tap_check "the overview lists commands" grep -q "	cmd	sync" "$tap_tmp/help-overview.tsv"
tap_check "the overview lists options" grep -q "	opt	-c, --config FILE" "$tap_tmp/help-overview.tsv"

for cmd in $(awk -F '\t' '$1 == "overview" && $2 == "cmd" { print $3 }' "$tap_tmp/help-overview.tsv"); do
	"$ferry" help "$cmd" | help_records "$cmd" > "$tap_tmp/help-$cmd.tsv"
	compare_section "$cmd" "$tap_tmp/help-$cmd.tsv"
done
tap_check "ferry help sync has its options" grep -q "	opt	--dry-run	" "$tap_tmp/help-sync.tsv"

tap_done
