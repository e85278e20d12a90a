#!/usr/bin/env python3
# sync_oracle.py - a small reference implementation of `ferry sync` (SPEC §4)
# in Python, used ONLY to check the sync integration tests themselves: that
# each test's setup works against the real Dovecot and that its expectations
# hold for an implementation that follows the SPEC.  It is not part of ferry,
# not built, not run by `meson test`, and not crash-safe beyond what
# re-matching by Message-ID + size gives.  Simplifications: folder names are
# ASCII (no modified UTF-7), identity is Message-ID + CRLF size, no
# CONDSTORE/QRESYNC, no parallelism.
#
# Run the tests against it:
#   mkdir -p /tmp/oracle/cmd
#   printf '#!/bin/sh\nexec python3 %s "$@"\n' "$PWD/tests/oracle/sync_oracle.py" > /tmp/oracle/cmd/ferry
#   chmod +x /tmp/oracle/cmd/ferry
#   cd build && FERRY_SOURCE_ROOT=$PWD/.. FERRY_BUILD_ROOT=/tmp/oracle ./tests/test_sync
# ORACLE_MUT=NAME breaks one rule on purpose (redownload-moves, reupload-moves,
# no-safety, remote-wins, bare-expunge, vanished-deletes, dry-writes,
# no-match) to show that the test of that rule fails.
import sys, os, json, yaml, imaplib, ssl, fcntl, re, time, subprocess, socket, datetime

MUT = os.environ.get('ORACLE_MUT', '')

def die(code, msg):
    print("ferry: " + msg, file=sys.stderr)
    sys.exit(code)

def q(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

LETTERS = {'D': '\\Draft', 'F': '\\Flagged', 'P': '$Forwarded', 'R': '\\Answered', 'S': '\\Seen', 'T': '\\Deleted'}
REV = {v.lower(): k for k, v in LETTERS.items()}

def esc_comp(c):
    if c in ('cur', 'new', 'tmp'):
        return '%%%02X' % ord(c[0]) + c[1:]
    return c.replace('%', '%25')

def local_path(root, name):
    if name.upper() == 'INBOX':
        return os.path.join(root, 'INBOX')
    return os.path.join(root, *[esc_comp(c) for c in name.split('/')])

def decode_rel(rel):
    if rel == 'INBOX':
        return 'INBOX'
    return re.sub(r'%([0-9A-F]{2})', lambda m: chr(int(m.group(1), 16)), rel)

def local_folders(root):
    out = []
    for dp, dns, fns in os.walk(root):
        dns[:] = [d for d in dns if d not in ('cur', 'new', 'tmp')]
        if dp != root and os.path.isdir(os.path.join(dp, 'cur')):
            out.append(decode_rel(os.path.relpath(dp, root)))
    return out

def read_kw(fp):
    t = {}
    try:
        for line in open(os.path.join(fp, 'dovecot-keywords')):
            n, _, name = line.rstrip('\n').partition(' ')
            t[int(n)] = name
    except OSError:
        pass
    return t

def kw_letter(fp, kw):
    t = read_kw(fp)
    for i, n in t.items():
        if n == kw:
            return chr(97 + i)
    for i in range(26):
        if i not in t:
            with open(os.path.join(fp, 'dovecot-keywords'), 'a') as f:
                f.write('%d %s\n' % (i, kw))
            return chr(97 + i)
    return ''

def letters_for(fp, flags):
    ls = []
    for f in flags:
        if f.lower() in REV:
            ls.append(REV[f.lower()])
        else:
            ls.append(kw_letter(fp, f))
    return ''.join(sorted(ls))

def msgid_of(data):
    m = re.search(rb'^message-id:[ \t]*(.*?)\r?$', data.split(b'\n\n')[0].split(b'\r\n\r\n')[0], re.I | re.M)
    return m.group(1).decode().strip() if m else ''

def ident_local(data):
    size = len(data) + data.count(b'\n') - data.count(b'\r\n')
    return '%s#%d' % (msgid_of(data), size)

def scan_local(fp):
    kw = read_kw(fp)
    out = {}
    for sub in ('cur', 'new'):
        d = os.path.join(fp, sub)
        if not os.path.isdir(d):
            continue
        for fn in os.listdir(d):
            if fn.startswith('.'):
                continue
            p = os.path.join(d, fn)
            data = open(p, 'rb').read()
            uniq = fn.split(':')[0]
            flags = set()
            if ':2,' in fn:
                for ch in fn.split(':2,')[1]:
                    if ch in LETTERS:
                        flags.add(LETTERS[ch])
                    elif 'a' <= ch <= 'z' and (ord(ch) - 97) in kw:
                        flags.add(kw[ord(ch) - 97])
            out[uniq] = {'flags': flags, 'ident': ident_local(data), 'path': p, 'mtime': os.stat(p).st_mtime}
    return out

counter = [0]
def new_uniq():
    counter[0] += 1
    return '%d.O%dP%d.oracle' % (int(time.time()), counter[0], os.getpid())

STEPS = [0]
def step():
    STEPS[0] += 1
    k = os.environ.get('FERRY_TEST_CRASH_AT')
    if k and int(k) == STEPS[0]:
        import signal; os.kill(os.getpid(), signal.SIGKILL)

def canon(flags):
    return sorted(f for f in flags if f.lower() != '\\recent')

def main():
    a = sys.argv[1:]
    cfgpath = None; quiet = False
    opts = set(); targets = []
    while a:
        x = a.pop(0)
        if x == '-c': cfgpath = a.pop(0)
        elif x == '-q': quiet = True
        elif x == '-v': pass
        elif x == 'sync': pass
        elif x.startswith('--'): opts.add(x)
        else: targets.append(x)
    cfg = yaml.safe_load(open(cfgpath))
    accname, acc = next(iter(cfg['accounts'].items()))
    only = None
    for t in targets:
        if '/' in t:
            only = t.split('/', 1)[1]
    r = acc['remote']; so = acc.get('sync') or {}
    direction = so.get('direction', 'both')
    if '--pull' in opts: direction = 'pull'
    if '--push' in opts: direction = 'push'
    dry = '--dry-run' in opts and MUT != 'dry-writes'; force = '--force' in opts
    expunge = so.get('expunge', True); delfolders = so.get('delete_folders', False)
    pct = int(str(so.get('safety_max_delete', '50%')).rstrip('%'))
    since = so.get('since')
    max_size = so.get('max_size')
    if max_size:
        s = str(max_size).upper()
        mult = 1
        if s.endswith('K'): mult, s = 1024, s[:-1]
        elif s.endswith('M'): mult, s = 1 << 20, s[:-1]
        max_size = int(s) * mult
    root = acc['local']['path']; state = acc['state']
    os.makedirs(state, exist_ok=True)
    lk = open(os.path.join(state, 'lock'), 'a')
    try:
        fcntl.flock(lk, fcntl.LOCK_EX | (0 if '--wait' in opts else fcntl.LOCK_NB))
    except BlockingIOError:
        die(6, 'locked')
    pw = subprocess.run(r['password_cmd'], shell=True, capture_output=True).stdout.decode().split('\n')[0]
    try:
        if r.get('tls', 'implicit') == 'implicit':
            ctx = ssl.create_default_context(cafile=r.get('tls_ca_file'))
            M = imaplib.IMAP4_SSL(r['host'], int(r['port']), ssl_context=ctx)
        else:
            M = imaplib.IMAP4(r['host'], int(r['port']))
    except OSError as e:
        die(4, 'cannot connect: %s' % e)
    try:
        M.login(r['user'], pw)
    except imaplib.IMAP4.error:
        die(3, 'authentication failed')
    sf = os.path.join(state, 'state.json')
    st = json.load(open(sf)) if os.path.exists(sf) else {'folders': {}}
    SF = st['folders']
    # remote folders
    typ, data = M.list('""', '*')
    rnames = {}; roles = {}
    for line in data:
        m = re.match(rb'\((.*?)\) "(.)" (.*)$', line)
        attrs = m.group(1).decode(); name = m.group(3).decode()
        if name.startswith('"'): name = name[1:-1].replace('\\"', '"').replace('\\\\', '\\')
        if '\\Noselect' in attrs or '\\NonExistent' in attrs: continue
        rnames[name] = True
        for role in ('Sent', 'Trash', 'Drafts', 'Junk', 'Archive'):
            if '\\' + role in attrs: roles[name] = role
    lnames = set(local_folders(root)) if os.path.isdir(root) else set()
    # pairing remote name -> local name
    pairs = {}
    for n in SF:
        pairs[n] = SF[n].get('local', n)
    for n in rnames:
        if n in pairs: continue
        role = roles.get(n)
        if role and role in lnames and n not in lnames and role not in pairs.values():
            pairs[n] = role
        else:
            pairs[n] = n
    for ln in lnames:
        if ln not in pairs.values(): pairs[ln] = ln
    if only:
        pairs = {k: v for k, v in pairs.items() if k == only}
    plan = []; summary = {}; safety = []
    def cnt(f, k): summary.setdefault(f, {}).setdefault(k, 0); summary[f][k] += 1
    # gather
    R = {}; L = {}; UV = {}
    for rn, ln in pairs.items():
        fp = local_path(root, ln)
        rec = SF.get(rn)
        r_has = rn in rnames; l_has = os.path.isdir(os.path.join(fp, 'cur'))
        if rec and not r_has and l_has:
            if delfolders and not scan_local(fp):
                plan.append('delete local folder ' + ln)
                if not dry and direction != 'push':
                    import shutil; shutil.rmtree(fp)
                    del SF[rn]
                continue
            if direction != 'pull':
                plan.append('create remote ' + rn)
                if not dry: M.create(q(rn)); r_has = True
            rec['recs'] = []
        if rec and r_has and not l_has and MUT != 'vanished-deletes':
            M.select(q(rn), readonly=True)
            typ, d = M.uid('SEARCH', 'ALL')
            if delfolders and not d[0].split():
                plan.append('delete remote folder ' + rn)
                if not dry and direction != 'pull':
                    M.unselect(); M.delete(q(rn)); del SF[rn]
                continue
            rec['recs'] = []
        if not r_has:
            if direction == 'pull' or dry:
                if not dry: continue
            else:
                M.create(q(rn)); r_has = True
            plan.append('create remote ' + rn); cnt(rn, 'folders')
        if not l_has:
            plan.append('create local ' + ln)
            if not dry and direction != 'push':
                for s in ('cur', 'new', 'tmp'): os.makedirs(os.path.join(fp, s), exist_ok=True)
        if not r_has:
            R[rn] = {}; UV[rn] = 0
        else:
            typ, d = M.select(q(rn), readonly=True)
            UV[rn] = int(M.untagged_responses.get('UIDVALIDITY', [b'0'])[0])
            typ, d = M.uid('FETCH', '1:*', '(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
            msgs = {}
            for it in d:
                if not isinstance(it, tuple): continue
                head = it[0].decode()
                uid = int(re.search(r'UID (\d+)', head).group(1))
                flags = re.search(r'FLAGS \((.*?)\)', head).group(1).split()
                size = int(re.search(r'RFC822.SIZE (\d+)', head).group(1))
                idate = re.search(r'INTERNALDATE "([^"]*)"', head).group(1)
                t = time.mktime(imaplib.Internaldate2tuple(('INTERNALDATE "%s"' % idate).encode()))
                mid = msgid_of(it[1])
                msgs[uid] = {'flags': set(canon(flags)), 'ident': '%s#%d' % (mid, size), 'size': size, 'time': t}
            R[rn] = msgs
            M.unselect()
        L[rn] = scan_local(fp) if os.path.isdir(fp) else {}
    sincets = None
    if since:
        sincets = time.mktime(datetime.date.fromisoformat(str(since)).timetuple())
    # records
    recs = {}
    for rn in R:
        rec = SF.setdefault(rn, {'uv': UV[rn], 'recs': [], 'local': pairs[rn]})
        if rec['uv'] != UV[rn]:
            byid = {}
            for uid, m in R[rn].items(): byid.setdefault(m['ident'], []).append(uid)
            for x in rec['recs']:
                u = byid.get(x['ident'])
                x['uid'] = u.pop(0) if u else None
            rec['uv'] = UV[rn]
        recs[rn] = rec['recs']
    # new things
    rnew = {}; lnew = {}
    for rn in R:
        known_u = {x['uid'] for x in recs[rn]}; known_l = {x['uniq'] for x in recs[rn]}
        for uid, m in R[rn].items():
            if uid not in known_u:
                if sincets and m['time'] < sincets: continue
                rnew.setdefault(m['ident'], []).append((rn, uid))
        for u, m in L[rn].items():
            if u not in known_l:
                if sincets and m['mtime'] < sincets: continue
                lnew.setdefault(m['ident'], []).append((rn, u))
    actions = []   # executed below
    newrecs = {rn: [] for rn in R}
    dels_r = {rn: [] for rn in R}; dels_l = {rn: [] for rn in R}
    for rn in R:
        for x in recs[rn]:
            rm = R[rn].get(x['uid']) if x['uid'] else None
            lm = L[rn].get(x['uniq']) if x['uniq'] else None
            base = set(x['flags'])
            if x.get('gone'):
                newrecs[rn].append(x); continue
            if rm and lm:
                if x.get('ph') and '\\Flagged' in lm['flags'] - base:
                    actions.append(('refetch', rn, x, lm))
                ra, rr = rm['flags'] - base, base - rm['flags']
                la, lr = lm['flags'] - base, base - lm['flags']
                merged = (base | ra | la) - rr - lr
                if MUT == 'remote-wins' and (ra or rr):
                    merged = rm['flags']
                if direction == 'pull':
                    newbase = rm['flags']; lf = merged; rf = rm['flags']
                elif direction == 'push':
                    newbase = lm['flags']; rf = merged; lf = lm['flags']
                else:
                    newbase = merged; lf = rf = merged
                if lf != lm['flags']: actions.append(('lflags', rn, x, lf, lm)); cnt(rn, 'lflags')
                if rf != rm['flags']: actions.append(('rflags', rn, x, rf)); cnt(rn, 'rflags')
                x['flags'] = sorted(newbase); newrecs[rn].append(x)
            elif not rm and lm:
                tgt = rnew.get(x['ident'])
                if tgt and direction != 'push':
                    b, uid = tgt.pop(0)
                    if not tgt: del rnew[x['ident']]
                    actions.append(('lmove', rn, x, lm, b, uid)); cnt(rn, 'lmove')
                elif direction == 'push':
                    newrecs[rn].append(x)
                elif expunge:
                    dels_l[rn].append((x, lm))
                else:
                    x['gone'] = True; newrecs[rn].append(x)
            elif rm and not lm:
                tgt = lnew.get(x['ident'])
                if tgt and direction != 'pull':
                    b, u = tgt.pop(0)
                    if not tgt: del lnew[x['ident']]
                    # server placement wins if it also moved: handled since rm present here
                    actions.append(('rmove', rn, x, b, u)); cnt(rn, 'rmove')
                elif direction == 'pull':
                    newrecs[rn].append(x)
                elif expunge:
                    dels_r[rn].append(x)
                else:
                    x['gone'] = True; newrecs[rn].append(x)
            else:
                # both gone: if remote new elsewhere and local new elsewhere: server wins, local move
                t_r = rnew.get(x['ident']); t_l = lnew.get(x['ident'])
                if t_r and t_l and direction == 'both':
                    b, uid = t_r.pop(0); c, u = t_l.pop(0)
                    if not t_r: del rnew[x['ident']]
                    if not t_l: del lnew[x['ident']]
                    actions.append(('lmove2', c, u, b, uid))
    # safety
    exit_code = 0
    for rn in R:
        total = len(recs[rn])
        for side, lst in (('server', dels_r[rn]), ('local', dels_l[rn])):
            n = len(lst)
            if MUT != 'no-safety' and n >= 10 and n * 100 > pct * total and not force:
                safety.append('%s: refusing to delete %d of %d messages on the %s' % (rn, n, total, side))
                for item in lst:
                    newrecs[rn].append(item if side == 'server' else item[0])
                lst.clear()
                exit_code = 5
    for rn in R:
        for x in dels_r[rn]: actions.append(('rexp', rn, x)); cnt(rn, 'rdel')
        for x, lm in dels_l[rn]: actions.append(('ldel', rn, x, lm)); cnt(rn, 'ldel')
    # remaining new
    for ident, lst in list(rnew.items()):
        for rn, uid in lst:
            lm_match = None
            for j, (c, u) in enumerate(lnew.get(ident, [])):
                if c == rn: lm_match = j; break
            if lm_match is not None and MUT != 'no-match':
                c, u = lnew[ident].pop(lm_match)
                fl = R[rn][uid]['flags'] | L[rn][u]['flags']
                newrecs[rn].append({'uid': uid, 'uniq': u, 'flags': sorted(fl), 'ident': ident})
                if fl != L[rn][u]['flags'] and direction != 'push': actions.append(('lflags', rn, newrecs[rn][-1], fl, L[rn][u]))
                if fl != R[rn][uid]['flags'] and direction != 'pull': actions.append(('rflags', rn, newrecs[rn][-1], fl))
            elif direction != 'push':
                actions.append(('down', rn, uid)); cnt(rn, 'down')
    for ident, lst in lnew.items():
        for c, u in lst:
            if direction != 'pull':
                actions.append(('up', c, u)); cnt(c, 'up')
    if dry:
        for a_ in actions: print('plan: %s %s' % (a_[0], a_[1]))
        for s in safety: print(s, file=sys.stderr)
        return exit_code
    # execute
    sel = [None]
    def select(rn):
        if sel[0] != rn:
            if sel[0]: M.unselect()
            M.select(q(rn)); sel[0] = rn
    def find_uid(rn, ident):
        mid = ident.rsplit('#', 1)[0]
        select(rn)
        typ, d = M.uid('SEARCH', 'HEADER', 'Message-ID', q(mid))
        u = d[0].split()
        return int(u[-1]) if u else None
    def write_local(rn, data, flags):
        fp = local_path(root, pairs[rn])
        uniq = new_uniq()
        tmp = os.path.join(fp, 'tmp', uniq)
        open(tmp, 'wb').write(data)
        os.rename(tmp, os.path.join(fp, 'cur', uniq + ':2,' + letters_for(fp, flags)))
        return uniq
    for a_ in actions:
        step()
        k = a_[0]
        if k == 'lflags':
            _, rn, x, fl, lm = a_
            fp = local_path(root, pairs[rn])
            d = os.path.join(fp, 'cur', x['uniq'] + ':2,' + letters_for(fp, fl))
            os.rename(lm['path'], d); lm['path'] = d
        elif k == 'rflags':
            _, rn, x, fl = a_
            select(rn); M.uid('STORE', str(x['uid']), 'FLAGS.SILENT', '(' + ' '.join(sorted(fl)) + ')')
        elif k == 'lmove':
            _, rn, x, lm, b, uid = a_
            fp = local_path(root, pairs[b])
            base = set(x['flags']); rf = R[b][uid]['flags']
            fl = (base | (rf - base) | (lm['flags'] - base)) - (base - rf) - (base - lm['flags'])
            d = os.path.join(fp, 'cur', x['uniq'] + ':2,' + letters_for(fp, fl))
            if MUT == 'redownload-moves':
                select(b); typ, dd = M.uid('FETCH', str(uid), '(BODY.PEEK[])'); os.unlink(lm['path']); open(d, 'wb').write(dd[0][1])
            else:
                os.rename(lm['path'], d)
            if fl != rf:
                select(b); M.uid('STORE', str(uid), 'FLAGS.SILENT', '(' + ' '.join(sorted(fl)) + ')')
            newrecs[b].append({'uid': uid, 'uniq': x['uniq'], 'flags': sorted(fl), 'ident': x['ident']})
        elif k == 'lmove2':
            _, c, u, b, uid = a_
            lm = L[c][u]; fp = local_path(root, pairs[b]); fl = R[b][uid]['flags']
            d = os.path.join(fp, 'cur', u + ':2,' + letters_for(fp, fl))
            os.rename(lm['path'], d)
            newrecs[b].append({'uid': uid, 'uniq': u, 'flags': sorted(fl), 'ident': lm['ident']})
        elif k == 'rmove':
            _, rn, x, b, u = a_
            select(rn)
            if MUT == 'reupload-moves':
                data = open(L[b][u]['path'], 'rb').read().replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
                M.unselect(); sel[0] = None; M.append(q(b), None, None, data); select(rn)
            else:
                M.uid('COPY', str(x['uid']), q(b))
            M.uid('STORE', str(x['uid']), '+FLAGS.SILENT', '(\\Deleted)')
            M.uid('EXPUNGE', str(x['uid']))
            nu = find_uid(b, x['ident'])
            lm = L[b][u]
            base = set(x['flags']); rm = R[rn][x['uid']]
            merged = (base | (rm['flags'] - base) | (lm['flags'] - base)) - (base - rm['flags']) - (base - lm['flags'])
            select(b); M.uid('STORE', str(nu), 'FLAGS.SILENT', '(' + ' '.join(sorted(merged)) + ')')
            if merged != lm['flags']:
                fp = local_path(root, pairs[b]); d = os.path.join(fp, 'cur', u + ':2,' + letters_for(fp, merged)); os.rename(lm['path'], d)
            newrecs[b].append({'uid': nu, 'uniq': u, 'flags': sorted(merged), 'ident': x['ident']})
        elif k == 'rexp':
            _, rn, x = a_
            select(rn); M.uid('STORE', str(x['uid']), '+FLAGS.SILENT', '(\\Deleted)')
            if MUT == 'bare-expunge': M.expunge()
            elif b'UIDPLUS' in M.capability()[1][0].upper().split(): M.uid('EXPUNGE', str(x['uid']))
            else:
                typ, d = M.uid('SEARCH', 'DELETED')
                others = [u for u in d[0].split() if int(u) != x['uid']]
                if others:
                    x['gone'] = True; newrecs[rn].append(x)
                else:
                    M.expunge()
        elif k == 'ldel':
            os.unlink(a_[3]['path'])
        elif k == 'down':
            _, rn, uid = a_
            select(rn)
            m = R[rn][uid]
            ph = bool(max_size and m['size'] > max_size)
            typ, d = M.uid('FETCH', str(uid), '(BODY.PEEK[HEADER])' if ph else '(BODY.PEEK[])')
            data = d[0][1]
            if ph: data = data + b'[ferry: message too large, flag it to fetch]\r\n'
            u = write_local(rn, data, m['flags'])
            newrecs[rn].append({'uid': uid, 'uniq': u, 'flags': sorted(m['flags']), 'ident': m['ident'], 'ph': ph})
        elif k == 'refetch':
            _, rn, x, lm = a_
            select(rn)
            typ, d = M.uid('FETCH', str(x['uid']), '(BODY.PEEK[])')
            open(lm['path'], 'wb').write(d[0][1]); x['ph'] = False
        elif k == 'up':
            _, c, u = a_
            lm = L[c][u]
            data = open(lm['path'], 'rb').read().replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
            if sel[0]: M.unselect(); sel[0] = None
            M.append(q(c), '(' + ' '.join(sorted(lm['flags'])) + ')', imaplib.Time2Internaldate(lm['mtime']), data)
            nu = find_uid(c, lm['ident'])
            newrecs[c].append({'uid': nu, 'uniq': u, 'flags': sorted(lm['flags']), 'ident': lm['ident']})
    for rn in R:
        SF[rn]['recs'] = newrecs[rn]
        # refresh uidvalidity
    if sel[0]: M.unselect()
    for rn in R:
        if rn in rnames or True:
            try:
                typ, d = M.status(q(rn), '(UIDVALIDITY)')
                SF[rn]['uv'] = int(re.search(rb'UIDVALIDITY (\d+)', d[0]).group(1))
            except Exception:
                pass
    step()
    json.dump(st, open(sf + '.tmp', 'w')); os.rename(sf + '.tmp', sf)
    step()
    if os.environ.get('FERRY_TEST_STEPS'): print('ferry-test: steps=%d' % STEPS[0], file=sys.stderr)
    M.logout()
    if not quiet:
        for rn, s in summary.items():
            print('%s: %s' % (rn, ' '.join('%s=%d' % kv for kv in sorted(s.items()))))
    for s in safety: print(s, file=sys.stderr)
    return exit_code

sys.exit(main())
