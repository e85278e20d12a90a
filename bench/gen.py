#!/usr/bin/env python3
"""gen.py - deterministic mail for ferry's benchmark (bench/run).

  gen.py dataset MAILDIR SEED main|big|huge|quick
      Write a dataset straight into a Dovecot Maildir++ tree (MAILDIR is the
      user's ~/Maildir).  The caller chowns it and runs doveadm force-resync.
        main   5,000 messages (~240 MB) in 10 folders
        big    50,000 small messages in INBOX (scenario d)
        huge   one 200 MB message in the folder "Huge" (scenario e)
        quick  120 messages (~1 MB) in 3 folders (the CI smoke run)
  gen.py server-changes DOVEADM_CONF USER MAILDIR SEED NEW FLAGS EXPUNGES
      On the server: NEW new messages written into new/ of the dataset's
      folders, FLAGS flag changes and EXPUNGES expunges (doveadm), spread
      over the folders in proportion to their size.
  gen.py local-changes ROOT INBOX SEED FLAGS DELETIONS NEW
      On a local verbatim Maildir (ROOT/Folder/{cur,new}; INBOX apart):
      FLAGS flag changes (renames), DELETIONS files removed, NEW messages
      written into new/.  Messages are chosen by Message-ID, so two copies
      of the same mailboxes (ferry's and mbsync's) get the same changes.
      Server changes touch only messages with an odd index in their
      Message-ID, local changes only even ones: no conflicts.
  gen.py count ROOT INBOX
      Print "FOLDER COUNT" for each folder of a local verbatim Maildir.
  gen.py evict TREE...
      Drop the page cache of every file under TREE that has no other link
      (posix_fadvise DONTNEED; the caller has run `sync`, so the pages are
      clean).  bench/run does it to each tree it discards; see README.md.

Sizes: mostly 2-10 KB, 11% a log-uniform tail from 10 KB to 2 MB (base64
attachments); about a fifth of the small ones multipart.  Flags: 70% seen,
8% flagged, 3% answered.  Everything follows from SEED; the seed is printed.
"""
import base64
import math
import os
import random
import re
import subprocess
import sys

MAIN_FOLDERS = [("INBOX", 1500), ("Archive", 1200), ("Sent Items", 500),
                ("Lists/dev", 600), ("Lists/announce", 300), ("Work", 400),
                ("Family", 200), ("Drafts", 50), ("Trash", 150), ("Junk", 100)]
QUICK_FOLDERS = [("INBOX", 60), ("Work", 40), ("Lists/dev", 20)]
WORDS = ("the of and to in is that for it as was with be by on not he this are "
         "or his from at which but have an they you were her she there been "
         "one all we their has would when if so no will can more other what "
         "about up out them into some could time only new sync mail server "
         "release build patch review meeting tomorrow thanks regards schedule "
         "budget report draft attached please see below ferry maildir").split()
BASE_TIME = 1700000000


def disk_dir(maildir, folder):
    """Dovecot's Maildir++ folder for an IMAP name (separator "/")."""
    if folder == "INBOX":
        return maildir
    return os.path.join(maildir, "." + folder.replace("/", "."))


def pick_size(rng, tail=True):
    if tail and rng.random() < 0.11:
        return int(math.exp(rng.uniform(math.log(10e3), math.log(2e6))))
    return rng.randint(2000, 10000)


def pick_flags(rng):
    f = ""
    if rng.random() < 0.08:
        f += "F"
    if rng.random() < 0.03:
        f += "R"
    if rng.random() < 0.70:
        f += "S"
    return f


def text_lines(rng, nbytes):
    out, n = [], 0
    while n < nbytes:
        line = " ".join(rng.choices(WORDS, k=rng.randint(6, 12))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)


def make_message(rng, tag, idx, size):
    date = BASE_TIME + idx * 37
    hdr = ("From: Sender %d <sender%d@example.org>\n"
           "To: Alice <alice@example.org>\n"
           "Subject: %s message %d about %s\n"
           "Date: %s\n"
           "Message-ID: <bench-%s-%d@ferry.bench>\n"
           "MIME-Version: 1.0\n") % (
        idx % 97, idx % 97, tag, idx, rng.choice(WORDS),
        _rfc2822(date), tag, idx)
    multipart = size > 10000 or rng.random() < 0.2
    if not multipart:
        body = text_lines(rng, max(size - len(hdr) - 60, 100))
        msg = hdr + "Content-Type: text/plain; charset=us-ascii\n\n" + body
    else:
        bnd = "=_bench_%d" % idx
        text = text_lines(rng, rng.randint(300, 1500))
        room = max(size - len(hdr) - len(text) - 400, 256)
        raw = rng.randbytes(room * 3 // 4)
        att = base64.encodebytes(raw).decode("ascii")
        msg = (hdr + 'Content-Type: multipart/mixed; boundary="%s"\n\n' % bnd +
               "This is a multi-part message in MIME format.\n\n"
               "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n" % (bnd, text) +
               "--%s\nContent-Type: application/octet-stream; name=\"file%d.bin\"\n"
               "Content-Transfer-Encoding: base64\n"
               "Content-Disposition: attachment; filename=\"file%d.bin\"\n\n" % (bnd, idx, idx) +
               att + "\n--%s--\n" % bnd)
    return msg.encode("ascii"), date


def _rfc2822(t):
    import email.utils
    return email.utils.formatdate(t, usegmt=True)


def write_msg(dirpath, sub, idx, data, date, flags, tag):
    name = "%d.M%dP%s.bench,S=%d" % (date, idx, tag, len(data))
    if sub == "cur":
        name += ":2," + flags
    path = os.path.join(dirpath, sub, name)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (date, date))
    return path


def ensure_folder(d):
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, s), exist_ok=True)


def cmd_dataset(maildir, seed, kind):
    rng = random.Random("%s-%s" % (seed, kind))
    total = 0
    if kind in ("main", "quick"):
        folders = MAIN_FOLDERS if kind == "main" else QUICK_FOLDERS
        idx = 0
        for name, count in folders:
            d = disk_dir(maildir, name)
            ensure_folder(d)
            for _ in range(count):
                size = pick_size(rng) if kind == "main" else rng.randint(2000, 20000)
                data, date = make_message(rng, kind, idx, size)
                write_msg(d, "cur", idx, data, date, pick_flags(rng), kind)
                total += len(data)
                idx += 1
    elif kind == "big":
        ensure_folder(maildir)
        for idx in range(50000):
            data, date = make_message(rng, "big", idx, pick_size(rng, tail=False))
            write_msg(maildir, "cur", idx, data, date, pick_flags(rng), "big")
            total += len(data)
    elif kind == "huge":
        d = disk_dir(maildir, "Huge")
        ensure_folder(d)
        data, date = make_message(rng, "huge", 0, 200 * 1000 * 1000)
        write_msg(d, "cur", 0, data, date, "", "huge")
        total += len(data)
    else:
        sys.exit("gen.py: unknown dataset \"%s\"" % kind)
    print("gen.py: seed %s, dataset %s, %d bytes" % (seed, kind, total), file=sys.stderr)


def spread(rng, folders, n):
    """n items over folders in proportion to their counts: [(folder, k)]."""
    names = [f for f, c in folders for _ in range(c)]
    picks = {}
    for _ in range(n):
        f = rng.choice(names)
        picks[f] = picks.get(f, 0) + 1
    return picks


def doveadm(conf, *args):
    return subprocess.run(["doveadm", "-c", conf] + list(args), check=True,
                          stdout=subprocess.PIPE, text=True).stdout


def uidset(uids):
    return ",".join(str(u) for u in sorted(uids))


def msg_index(msgid):
    """N of <bench-TAG-N@ferry.bench>, else -1."""
    m = re.search(r"<bench-[a-z]+-([0-9]+)@ferry\.bench>", msgid)
    return int(m.group(1)) if m else -1


def cmd_server_changes(conf, user, maildir, seed, new, flags, expunges):
    rng = random.Random("%s-server" % seed)
    folders = MAIN_FOLDERS if not os.environ.get("BENCH_QUICK") else QUICK_FOLDERS
    uids = {}
    for name, _ in folders:
        out = doveadm(conf, "fetch", "-u", user, "uid hdr.message-id", "mailbox", name, "all")
        uid = None
        uids[name] = []
        for l in out.splitlines():
            if l.startswith("uid:"):
                uid = int(l.split()[1])
            elif l.startswith("hdr.message-id:") and uid is not None:
                if msg_index(l.split(":", 1)[1]) % 2 == 1:
                    uids[name].append(uid)     # the server's half: odd indexes
                uid = None
    touched = set()
    for name, k in sorted(spread(rng, folders, expunges).items()):
        pool = [u for u in uids[name] if (name, u) not in touched]
        sel = rng.sample(pool, min(k, len(pool)))
        touched.update((name, u) for u in sel)
        doveadm(conf, "expunge", "-u", user, "mailbox", name, "uid", uidset(sel))
    for name, k in sorted(spread(rng, folders, flags).items()):
        pool = [u for u in uids[name] if (name, u) not in touched]
        sel = rng.sample(pool, min(k, len(pool)))
        touched.update((name, u) for u in sel)
        for flag in ("\\Seen", "\\Flagged"):
            part = [u for u in sel if (u + len(flag)) % 2 == 0]
            if not part:
                continue
            op = "add" if flag == "\\Flagged" else "remove"
            doveadm(conf, "flags", op, "-u", user, flag, "mailbox", name, "uid", uidset(part))
    idx = 900000
    for name, k in sorted(spread(rng, folders, new).items()):
        d = disk_dir(maildir, name)
        for _ in range(k):
            data, date = make_message(rng, "srvnew", idx, pick_size(rng))
            write_msg(d, "new", idx, data, date, "", "srvnew")
            idx += 1
    print("gen.py: seed %s, server: %d new, %d flag changes, %d expunges" %
          (seed, new, flags, expunges), file=sys.stderr)


def local_folders(root, inbox):
    out = {"INBOX": inbox} if os.path.isdir(os.path.join(inbox, "cur")) else {}
    for dp, dns, _ in os.walk(root):
        if "cur" in dns and os.path.abspath(dp) != os.path.abspath(inbox):
            out[os.path.relpath(dp, root)] = dp
        dns[:] = [d for d in dns if d not in ("cur", "new", "tmp")]
    return out


def msgid_of(path):
    with open(path, "rb") as f:
        head = f.read(2048)
    for line in head.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
        if not line:
            break
    return ""


def cmd_local_changes(root, inbox, seed, nflags, ndel, nnew):
    rng = random.Random("%s-local" % seed)
    msgs = []      # (msgid, folder, dir, sub, name)
    folders = local_folders(root, inbox)
    for fname, d in sorted(folders.items()):
        for sub in ("cur", "new"):
            for n in os.listdir(os.path.join(d, sub)):
                msgs.append((msgid_of(os.path.join(d, sub, n)), fname, d, sub, n))
    # The local half: even indexes, so that no message is changed on both
    # sides (conflicts are a separate matter from speed).
    msgs = sorted(m for m in msgs if msg_index(m[0]) % 2 == 0)
    sel = rng.sample(range(len(msgs)), min(len(msgs), nflags + ndel))
    for i in sel[:ndel]:
        _, _, d, sub, n = msgs[i]
        os.unlink(os.path.join(d, sub, n))
    for i in sel[ndel:]:
        _, _, d, sub, n = msgs[i]
        base, _, info = n.partition(":2,")
        fl = set(info) if sub == "cur" else set()
        fl ^= {"F"} if i % 2 else {"S"}
        os.rename(os.path.join(d, sub, n),
                  os.path.join(d, "cur", base + ":2," + "".join(sorted(fl))))
    names = sorted(folders)
    idx = 800000
    for _ in range(nnew):
        d = folders[rng.choice(names)]
        data, date = make_message(rng, "locnew", idx, pick_size(rng))
        write_msg(d, "new", idx, data, date, "", "locnew")
        idx += 1
    print("gen.py: seed %s, local: %d flag changes, %d deletions, %d new" %
          (seed, nflags, ndel, nnew), file=sys.stderr)


def cmd_count(root, inbox):
    for fname, d in sorted(local_folders(root, inbox).items()):
        n = sum(len(os.listdir(os.path.join(d, s))) for s in ("cur", "new"))
        print("%s %d" % (fname, n))


def cmd_evict(trees):
    for tree in trees:
        for dirpath, _, files in os.walk(tree):
            for name in files:
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    # a hard link shared with a snapshot is read again later
                    if os.fstat(fd).st_nlink == 1:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd == "dataset" and len(a) == 3:
        cmd_dataset(a[0], a[1], a[2])
    elif cmd == "server-changes" and len(a) == 7:
        cmd_server_changes(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6]))
    elif cmd == "local-changes" and len(a) == 6:
        cmd_local_changes(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    elif cmd == "count" and len(a) == 2:
        cmd_count(a[0], a[1])
    elif cmd == "evict" and len(a) >= 1:
        cmd_evict(a)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
