#!/bin/bash
# Case 4: maildir++ layout: server names with dots, INBOX subfolders, ".hidden", and round-trips
source /tmp/audit/md-hostile/lib.sh
setup c4_mpp maildir++
for mb in 'a.b' 'a.b/c' 'Lists/ferry.dev' 'INBOX/Sub' 'INBOX/Sub/Deep' '.hidden' '..dots' 'x..y' 'trail.' '50%' 'a%2Eb' 'cur' 'Foo/new' 'Ünï.cødé'; do
  dv mailbox create -u alice "$mb" 2>&1 | head -2
  dv save -u alice -m "$mb" <<<"$(printf 'Subject: %s\nMessage-ID: <mb-%s@audit>\n\nb\n' "$mb" "$(echo "$mb" | md5sum | cut -c1-8)")" 2>&1 | head -1
done
dv mailbox list -u alice | cat -A | tr '\n' ' '; echo
fsync_ s1 sync; grep -v 'up to date' $R/s1.out; head -12 $R/s1.err
ls -a $M | cat -A | tr '\n' ' '; echo
fsync_ s2 sync; tail -1 $R/s2.out; head -3 $R/s2.err
echo "### local: add mail to each local folder, then sync: must land in the right server folder"
for d in $M/.[!.]* $M/..?* $M/INBOX; do [ -d "$d/cur" ] || continue; b=$(basename "$d"); printf 'Subject: local-%s\nMessage-ID: <loc-%s@audit>\n\nb\n' "$b" "$(echo "$b" | md5sum | cut -c1-8)" > "$d/cur/1700000001.loc.h:2,"; done
fsync_ s3 sync; grep -v 'up to date' $R/s3.out; head -5 $R/s3.err
dv mailbox list -u alice | tr '\n' ' '; echo
srv | awk -F' [|] ' '{print $1}' | sort | uniq -c
echo "### rename a dotted folder locally (.a%2Eb -> .a%2Ebz) and an INBOX child"
mv "$M/.a%2Eb" "$M/.a%2Ebz" 2>/dev/null; mv "$M/.a%2Eb.c" "$M/.a%2Ebz.c" 2>/dev/null
fsync_ s4 sync; grep -v 'up to date' $R/s4.out; head -3 $R/s4.err; dv mailbox list -u alice | tr '\n' ' '; echo
echo "### fresh state, same maildir: nothing should transfer"
rm -rf $R/state; fsync_ s5 sync; tail -1 $R/s5.out; head -3 $R/s5.err
echo "server total $(srv | wc -l) uniq $(srv | awk -F' [|] ' '{print $4}' | sort -u | wc -l)"
teardown
