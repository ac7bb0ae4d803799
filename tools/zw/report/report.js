/* tools/zw/report/report.js - the page of `zw report`: reads the JSON that cmd_report_json.c
 * wrote into <script id="zw-data"> and draws the summary, the memory over time (uPlot), the flame
 * graph (d3-flame-graph) and the tables. Plain ES2017, no modules: embed.js inlines it after the
 * libraries, which define the globals `uPlot`, `d3` and `flamegraph` (whose `default` is
 * d3-flame-graph's chart).
 *
 * The data (docs/report.md#data): strings, frames ([function, file, line, module, inlined,
 * offset] as indices into strings, -1 for none) and sites (frame indices, OLDEST first) shared by
 * all processes; each process has its live sets and its allocation counts as [site, allocations,
 * bytes]. A kept live set (peak, exit, a mark) carries its rows by traceback, line and file as
 * `zw top` computes them in C (zw_snapshot_statistics): the page shows those as they are. Only
 * what C cannot prepare is grouped here: the live set at a clicked or typed time (rebuilt from
 * the steps, as zw_capture_live_at) and the comparison of two sets, with the keys and orders of
 * stats.c (tests/zw/test_report.js checks both against zw top and zw compare). When the page is
 * drawn, window.zwReport.ready is true (the test waits on it). */
(function () {
    'use strict';

    const D = JSON.parse(document.getElementById('zw-data').textContent);
    const S = D.strings;
    const F = D.frames;
    const T = D.sites;
    const $ = (id) => document.getElementById(id);
    let P = null; /* the process shown */
    let plot = null; /* its uPlot chart */
    let flame = null; /* its flame graph */
    let clickedT = null; /* the time clicked on the chart, seconds */

    /* ---- formatting ---- */

    /* tracemalloc's _format_size, as zw prints sizes: "5002 B", "12.3 KiB", "105 KiB". */
    function fmtSize(bytes, sign) {
        let size = bytes;
        const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        let text = null;
        for (let i = 0; i < units.length; i++) {
            if (Math.abs(size) < 100 && units[i] !== 'B') {
                text = size.toFixed(1) + ' ' + units[i];
                break;
            }
            if (Math.abs(size) < 10 * 1024 || units[i] === 'TiB') {
                text = Math.round(size) + ' ' + units[i];
                break;
            }
            size /= 1024;
        }
        return sign && bytes >= 0 ? '+' + text : text;
    }
    const fmtCount = (n) => Number(n).toLocaleString('en-US');
    const fmtSigned = (n) => (n > 0 ? '+' : '') + fmtCount(n);
    const fmtTime = (s) => s.toFixed(3) + ' s';
    const pct = (a, b) => (b > 0 ? (100 * a / b).toFixed(1) + '%' : '-');

    function el(tag, attrs, ...children) {
        const e = document.createElement(tag);
        for (const k in attrs || {}) {
            if (k === 'class')
                e.className = attrs[k];
            else
                e.setAttribute(k, attrs[k]);
        }
        for (const c of children)
            if (c !== null && c !== undefined)
                e.append(c instanceof Node ? c : String(c));
        return e;
    }

    /* ---- frames and sites ---- */

    const str = (i) => (i >= 0 ? S[i] : null);
    const frameFn = (f) => str(F[f][0]);
    const frameFile = (f) => str(F[f][1]);
    const frameLine = (f) => F[f][2];
    const frameModule = (f) => str(F[f][3]);
    const frameOffset = (f) => F[f][5] || 0;
    /* str(frame), as zw_frame_str: "file:line", or "module+0xoffset" without line information. */
    const frameWhere = (f) => (!frameLine(f) && frameModule(f)
        ? frameModule(f) + '+0x' + frameOffset(f).toString(16) : frameFile(f) + ':' + frameLine(f));
    const frameText = (f) => frameWhere(f) + (frameFn(f) ? ' (' + frameFn(f) + ')' : '');
    const frameSymbol = (f) => str(F[f][7]);
    /* The most recent frame of a site outside the allocation functions (the oldest one if all
     * are), as zw's cli_site_frame; -1 for an empty traceback. */
    function siteTop(s) {
        let i = T[s].length - 1;
        while (i > 0 && F[T[s][i]][6])
            i--;
        return i >= 0 ? T[s][i] : -1;
    }
    const basename = (p) => (p ? p.slice(p.lastIndexOf('/') + 1) : '');

    /* ---- statistics, as zw_snapshot_statistics and zw_snapshot_compare_to (stats.c) ---- */

    /* A frame as a key: frames are equal if their file and line are; without a line, their
     * module and offset too (stats.c's frame_key_equal). */
    const frameKey = (f) => frameFile(f) + ':' + frameLine(f) +
        (!frameLine(f) && frameModule(f) !== null ? '@' + frameModule(f) + '+' + frameOffset(f) : '');
    function groupKey(site, group) {
        if (group === 'traceback')
            return T[site].map(frameKey).join('\n');
        const f = siteTop(site);
        return group === 'filename' ? frameFile(f) : frameKey(f);
    }
    /* strcmp's order on strings, as zw_traceback_compare orders frames. */
    const cmpStr = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    function cmpFrame(f, g, group) {
        if (group === 'filename')
            return cmpStr(frameFile(f), frameFile(g));
        return cmpStr(frameFile(f), frameFile(g)) || frameLine(f) - frameLine(g) ||
            (!frameLine(f) ? Math.sign(frameOffset(f) - frameOffset(g)) : 0);
    }
    /* zw_traceback_compare of the rows' keys. */
    function cmpKey(a, b, group) {
        if (group !== 'traceback')
            return cmpFrame(siteTop(a.site), siteTop(b.site), group);
        const x = T[a.site], y = T[b.site];
        for (let i = 0; i < Math.min(x.length, y.length); i++) {
            const c = cmpFrame(x[i], y[i], group);
            if (c)
                return c;
        }
        return x.length - y.length;
    }

    /* [{key, site, bytes, blocks}] of `entries` ([site, bytes, blocks]) grouped as C groups:
     * largest first, then most blocks, then by key (descending, as stats.c's order). A site
     * without frames is in no line or file group (as in stats.c). */
    function groupRows(entries, group) {
        const m = new Map();
        for (const [site, bytes, blocks] of entries || []) {
            if (group !== 'traceback' && T[site].length === 0)
                continue;
            const k = groupKey(site, group);
            let s = m.get(k);
            if (!s)
                m.set(k, (s = {key: k, site: site, bytes: 0, blocks: 0}));
            s.bytes += bytes;
            s.blocks += blocks;
        }
        return [...m.values()].sort((a, b) => b.bytes - a.bytes || b.blocks - a.blocks ||
            -cmpKey(a, b, group));
    }

    /* The rows of a set: prepared in C for a kept set (its "by" rows, its "entries" by traceback),
     * grouped here for a live set rebuilt from the steps. */
    function statistics(set, grouping) {
        if (set.kind === 'live')
            return groupRows(set.entries, grouping);
        const rows = grouping === 'traceback' ? set.entries : set.by[grouping].entries;
        return rows.map(([site, bytes, blocks]) => ({key: null, site: site, bytes: bytes, blocks: blocks}));
    }
    /* The "other" of a set's rows: [bytes, blocks, rows] not kept. */
    const otherOf = (set, grouping) => (set.kind === 'live' ? null
        : grouping === 'traceback' || !set.by ? set.other : set.by[grouping].other);

    /* zw_snapshot_compare_to(new, old): every key of either, largest change first. */
    function compare(oldSet, newSet, grouping) {
        const m = new Map();
        for (const s of groupRows(newSet.entries, grouping))
            m.set(s.key, Object.assign(s, {dbytes: s.bytes, dblocks: s.blocks}));
        for (const s of groupRows(oldSet.entries, grouping)) {
            const n = m.get(s.key);
            if (n) {
                n.dbytes -= s.bytes;
                n.dblocks -= s.blocks;
            } else {
                m.set(s.key, {key: s.key, site: s.site, bytes: 0, blocks: 0, dbytes: -s.bytes,
                    dblocks: -s.blocks});
            }
        }
        return [...m.values()].sort((a, b) => Math.abs(b.dbytes) - Math.abs(a.dbytes) ||
            b.bytes - a.bytes || Math.abs(b.dblocks) - Math.abs(a.dblocks) || b.blocks - a.blocks ||
            -cmpKey(a, b, grouping));
    }

    /* Rows as zw top --json and zw compare --json print them: {bytes, blocks[, bytes_diff,
     * blocks_diff], traceback} with the key's frames, the most recent first (for the test). */
    function cliRows(rows, grouping) {
        const frame = (f) => ({function: frameFn(f), symbol: frameSymbol(f), file: frameFile(f),
            line: frameLine(f), module: frameModule(f)});
        return rows.map((r) => {
            const f = siteTop(r.site);
            const tb = grouping === 'traceback' ? T[r.site].slice().reverse().map(frame)
                : grouping === 'lineno' ? [frame(f)]
                : [{function: null, symbol: null, file: frameFile(f), line: 0, module: null}];
            const o = {bytes: r.bytes, blocks: r.blocks};
            if (r.dbytes !== undefined)
                Object.assign(o, {bytes_diff: r.dbytes, blocks_diff: r.dblocks});
            o.traceback = tb;
            return o;
        });
    }

    /* ---- live sets ---- */

    const kept = () => P.sets.filter((s) => s.entries !== null);
    function setName(s) {
        const what = s.kind === 'mark' ? 'mark \u201c' + s.label + '\u201d' : s.kind;
        if (s.kind === 'live')
            return 'live at ' + fmtTime(s.t);
        return what + ' at ' + fmtTime(s.t);
    }
    /* The last live set kept at or before `t` seconds (the capture keeps peak, marks, exit). */
    function setAtOrBefore(t) {
        let best = null;
        for (const s of kept())
            if (s.t <= t + 1e-9 && (!best || s.t >= best.t))
                best = s;
        return best;
    }
    const setOfKind = (kind) => kept().find((s) => s.kind === kind) || null;
    /* A kept set by name (peak, exit, a mark's label), or the live set rebuilt at a time. */
    const setNamed = (at) => (typeof at === 'number' ? liveAt(at)
        : kept().find((s) => (s.kind === 'mark' ? s.label : s.kind) === at) || null);

    /* The live set at `t` seconds rebuilt from the steps (the sum of every change by site up to
     * t), or null if the capture has no steps. */
    function liveAt(t) {
        const st = P.steps;
        if (!st)
            return null;
        const acc = new Map();
        let last = 0;
        for (let i = 0; i < st.t.length && st.t[i] <= t + 1e-9; i++) {
            last = st.t[i];
            const d = st.d[i];
            for (let k = 0; k < d.length; k += 3) {
                const a = acc.get(d[k]);
                if (a) {
                    a[1] += d[k + 1];
                    a[2] += d[k + 2];
                } else {
                    acc.set(d[k], [d[k], d[k + 1], d[k + 2]]);
                }
            }
        }
        const entries = [...acc.values()].filter((e) => e[2] > 0 && e[1] >= 0); /* as the rebuilt set */
        let bytes = 0, blocks = 0;
        for (const e of entries) {
            bytes += e[1];
            blocks += e[2];
        }
        return {label: 'live', kind: 'live', t: t, stepT: last, entries: entries, bytes: bytes,
            blocks: blocks, other: null};
    }
    /* What was live at `t`, from the latest knowledge at or before it: the live set rebuilt from
     * the steps (taken at each sample tick) or a kept set (peak, mark, exit: exact at their time),
     * whichever is more recent. null when neither is at or before `t`. */
    function liveOrSetAt(t) {
        const live = liveAt(t);
        const set = setAtOrBefore(t);
        const hasStep = live && P.steps.t.length > 0 && P.steps.t[0] <= t + 1e-9;
        if (hasStep && (!set || live.stepT > set.t))
            return live;
        return set;
    }

    /* ---- tables ---- */

    function locationCell(site, group, withTrace) {
        const f = siteTop(site);
        let text;
        if (f < 0)
            text = '<unknown>';
        else if (group === 'filename')
            text = frameFile(f);
        else
            text = frameText(f);
        if (!withTrace)
            return el('td', {class: 'loc'}, text);
        const ol = el('ol');
        for (let i = T[site].length - 1; i >= 0; i--) { /* innermost first, as zw prints */
            const g = T[site][i];
            ol.append(el('li', null, frameWhere(g), ' ', el('span', {class: 'fn'}, frameFn(g) || ''),
                frameModule(g) ? ' [' + basename(frameModule(g)) + ']' : ''));
        }
        return el('td', {class: 'loc'}, el('details', null, el('summary', null, text), ol));
    }

    function fillStats(table, stats, group, limit, note) {
        table.replaceChildren(el('tr', null, el('th', {class: 'num'}, '#'),
            el('th', {class: 'num'}, 'size'), el('th', {class: 'num'}, 'blocks'),
            el('th', {class: 'num'}, 'average'), el('th', null, 'allocated at')));
        const n = limit > 0 ? Math.min(limit, stats.length) : stats.length;
        for (let i = 0; i < n; i++) {
            const s = stats[i];
            table.append(el('tr', null, el('td', {class: 'num'}, i + 1),
                el('td', {class: 'num'}, fmtSize(s.bytes)), el('td', {class: 'num'}, fmtCount(s.blocks)),
                el('td', {class: 'num'}, fmtSize(s.blocks ? s.bytes / s.blocks : 0)),
                locationCell(s.site, group, group === 'traceback')));
        }
        if (n < stats.length)
            table.append(el('tr', null, el('td', {colspan: 5, class: 'hint'},
                '(' + (stats.length - n) + ' more)')));
        if (note)
            table.append(el('tr', null, el('td', {colspan: 5, class: 'hint'}, note)));
    }

    /* "sites not kept" note for a set of which only the largest max_entries sites were kept. */
    function otherNote(set, grouping) {
        const other = otherOf(set, grouping);
        if (!other || other[2] === 0)
            return null;
        return 'and ' + fmtSize(other[0]) + ' in ' + fmtCount(other[1]) + ' blocks at ' +
            fmtCount(other[2]) + ' smaller ' + (grouping === 'traceback' ? 'sites' : 'rows') +
            ' (the report keeps the ' + D.max_entries + ' largest of each set)';
    }

    function setOptions(select, chosen) {
        select.replaceChildren();
        kept().forEach((s, i) => {
            const o = el('option', {value: i}, setName(s));
            if (s === chosen)
                o.selected = true;
            select.append(o);
        });
    }

    function drawTop() {
        const set = kept()[$('top-set').value];
        const group = $('top-group').value;
        if (!set)
            return $('top-table').replaceChildren(el('tr', null, el('td', null, 'no live set was kept')));
        fillStats($('top-table'), statistics(set, group), group, +$('top-limit').value,
            otherNote(set, group));
    }

    /* The names of the leak kinds, as zw leaks --kind takes them, and as the page shows them. */
    const LEAK_KINDS = {definite: 'definitely lost', indirect: 'indirectly lost',
        possible: 'possibly lost', reachable: 'still reachable'};

    /* The exit set's blocks of a leak kind ('all': the whole exit set), or null. */
    const leakSet = (kind) => (kind === 'all' ? setOfKind('exit') : P.leaks ? P.leaks[kind] : null);

    function drawLeaks() {
        const exit = setOfKind('exit');
        const sel = $('leaks-kind');
        for (const o of sel.options)
            o.disabled = o.value !== 'all' && !P.leaks;
        if (!P.leaks)
            sel.value = 'all';
        $('leaks-hint').textContent = !exit ? '' : P.leaks
            ? 'kinds of leak as zw leaks gives them: suppressed blocks (the C library\u2019s one-time allocations) left out'
            : 'leak kinds unknown: the capture has no reachability scan of its exit set';
        if (!exit) {
            $('leaks-table').replaceChildren(el('tr', null, el('td', {class: 'hint'},
                'no exit set: the process ' + (P.complete ? 'kept none' : 'died before writing it'))));
            return;
        }
        const set = leakSet(sel.value);
        if (!set || !set.entries) {
            $('leaks-table').replaceChildren(el('tr', null, el('td', {class: 'hint'},
                'no blocks of this kind were kept')));
            return;
        }
        fillStats($('leaks-table'), statistics(set, 'traceback'), 'traceback', 25,
            otherNote(set, 'traceback'));
    }

    function drawAllocations() {
        const t = $('allocs-table');
        if (!P.allocations) {
            t.replaceChildren(el('tr', null, el('td', {class: 'hint'}, 'the capture has no allocation sites')));
            return;
        }
        t.replaceChildren(el('tr', null, el('th', {class: 'num'}, '#'),
            el('th', {class: 'num'}, 'allocations'), el('th', {class: 'num'}, 'bytes'),
            el('th', {class: 'num'}, 'share'), el('th', null, 'allocated at')));
        const e = P.allocations.entries;
        const n = Math.min(25, e.length);
        for (let i = 0; i < n; i++) {
            t.append(el('tr', null, el('td', {class: 'num'}, i + 1), el('td', {class: 'num'}, fmtCount(e[i][1])),
                el('td', {class: 'num'}, fmtSize(e[i][2])), el('td', {class: 'num'}, pct(e[i][1], P.allocations.count)),
                locationCell(e[i][0], 'traceback', true)));
        }
        if (n < e.length + P.allocations.other[2])
            t.append(el('tr', null, el('td', {colspan: 5, class: 'hint'},
                '(' + (e.length + P.allocations.other[2] - n) + ' more sites)')));
    }

    function drawCompare() {
        const sets = kept();
        const pick = (sel, input) => {
            const t = input.value === '' ? NaN : +input.value;
            return isNaN(t) ? sets[sel.value] : liveOrSetAt(t);
        };
        const from = pick($('cmp-from'), $('cmp-from-t'));
        const to = pick($('cmp-to'), $('cmp-to-t'));
        const group = $('cmp-group').value;
        if (!from || !to) {
            $('cmp-note').textContent = 'no live set was kept at or before that time';
            $('cmp-table').replaceChildren();
            return;
        }
        const d = (to.bytes || 0) - (from.bytes || 0);
        $('cmp-note').textContent = 'from ' + setName(from) + ' (' + fmtSize(from.bytes) + ') to ' +
            setName(to) + ' (' + fmtSize(to.bytes) + '): ' + fmtSize(d, true);
        const t = $('cmp-table');
        t.replaceChildren(el('tr', null, el('th', {class: 'num'}, '#'), el('th', {class: 'num'}, 'size'),
            el('th', {class: 'num'}, 'change'), el('th', {class: 'num'}, 'blocks'),
            el('th', {class: 'num'}, 'change'), el('th', null, 'allocated at')));
        const stats = compare(from, to, group).filter((s) => s.dbytes || s.dblocks);
        const n = Math.min(25, stats.length);
        for (let i = 0; i < n; i++) {
            const s = stats[i];
            t.append(el('tr', null, el('td', {class: 'num'}, i + 1), el('td', {class: 'num'}, fmtSize(s.bytes)),
                el('td', {class: 'num ' + (s.dbytes > 0 ? 'pos' : 'neg')}, fmtSize(s.dbytes, true)),
                el('td', {class: 'num'}, fmtCount(s.blocks)), el('td', {class: 'num'}, fmtSigned(s.dblocks)),
                locationCell(s.site, group, group === 'traceback')));
        }
        if (stats.length === 0)
            t.append(el('tr', null, el('td', {colspan: 6, class: 'hint'}, 'no change')));
    }

    /* ---- summary ---- */

    function drawSummary() {
        const t = P.totals;
        const exit = setOfKind('exit');
        const samples = P.samples;
        let maxRss = 0, gap = null, maxGap = 0, maxGapT = 0;
        for (let i = 0; i < samples.t.length; i++) {
            maxRss = Math.max(maxRss, samples.rss[i]);
            const g = samples.rss[i] - samples.heap[i];
            if (g > maxGap) {
                maxGap = g;
                maxGapT = samples.t[i];
            }
        }
        if (t && samples.t.length) { /* the sample nearest the peak */
            let best = 0;
            for (let i = 1; i < samples.t.length; i++)
                if (Math.abs(samples.t[i] - t.peak_t) < Math.abs(samples.t[best] - t.peak_t))
                    best = i;
            gap = {rss: samples.rss[best], heap: samples.heap[best], t: samples.t[best]};
        }
        const card = (name, value, small) => el('div', null, el('dt', null, name),
            el('dd', null, value, small ? el('small', null, small) : null));
        const dl = $('summary');
        dl.replaceChildren();
        dl.append(card('program', basename(P.argv[0]) || '?', P.argv.join(' ') + ' (pid ' + P.pid +
            ', parent ' + P.ppid + (P.offset ? ', started ' + fmtTime(P.offset) + ' after the first' : '') +
            ')'));
        let ended = P.end === 'exit' ? 'exit status ' + P.end_code
            : P.end === '_exit' ? '_exit status ' + P.end_code
            : P.end === 'signal' ? 'signal ' + P.end_code + (P.signal ? ' (' + P.signal + ')' : '')
            : P.end === 'exec' ? 'exec (the new image has a capture of its own)' : 'unknown';
        if (!t) {
            dl.append(card('ended', ended, 'the capture was cut short: no totals'));
        } else {
            dl.append(card('duration', fmtTime(t.duration), ended));
            dl.append(card('allocations', fmtCount(t.allocations), fmtSize(t.bytes_allocated) + ' in all'));
            dl.append(card('frees', fmtCount(t.frees)));
            dl.append(card('peak', fmtSize(t.peak_bytes), 'at ' + fmtTime(t.peak_t)));
            dl.append(card('temporary', fmtCount(t.temporary),
                pct(t.temporary, t.allocations) + ' of allocations, freed before the next one'));
        }
        dl.append(card('leaked at exit', exit ? fmtSize(exit.bytes) : 'unknown',
            exit ? fmtCount(exit.blocks) + ' blocks' : 'no exit set'));
        if (gap)
            dl.append(card('RSS \u2212 heap at the peak', fmtSize(gap.rss - gap.heap, true),
                'RSS ' + fmtSize(gap.rss) + ', heap ' + fmtSize(gap.heap) + ' at ' + fmtTime(gap.t)));
        dl.append(card('max RSS', fmtSize(maxRss), 'largest RSS \u2212 heap: ' + fmtSize(maxGap) + ' at ' +
            fmtTime(maxGapT)));
        dl.append(card('samples', fmtCount(samples.count), 'every ' + P.interval_ms + ' ms' +
            (samples.count > samples.t.length ? ', ' + samples.t.length + ' drawn (maxima kept)' : '')));
        const marks = P.sets.filter((s) => s.kind === 'mark');
        dl.append(card('marks', marks.length, marks.map((s) => s.label + ' at ' + fmtTime(s.t)).join(', ')));
    }

    /* ---- memory over time ---- */

    function drawChart() {
        const box = $('chart');
        if (plot) {
            plot.destroy();
            plot = null;
        }
        box.replaceChildren();
        $('at-time').hidden = true;
        clickedT = null;
        const s = P.samples;
        if (s.t.length === 0) {
            box.append(el('p', {class: 'hint'}, 'no samples: the process ended before the first one'));
            return;
        }
        const peak = P.totals ? {t: P.totals.peak_t, bytes: P.totals.peak_bytes} : null;
        const marks = P.sets.filter((x) => x.kind === 'mark');
        const opts = {
            width: Math.max(400, box.clientWidth),
            height: 320,
            scales: {x: {time: false}},
            axes: [{label: 'seconds'}, {size: 80, values: (u, vals) => vals.map((v) => fmtSize(v))}],
            series: [
                {label: 'time', value: (u, v) => (v === null ? '-' : fmtTime(v))},
                {label: 'heap', stroke: '#c0392b', width: 1.5, fill: 'rgba(192,57,43,0.10)',
                    value: (u, v) => (v === null ? '-' : fmtSize(v))},
                {label: 'mmap', stroke: '#7d3c98', width: 1.5, value: (u, v) => (v === null ? '-' : fmtSize(v))},
                {label: 'RSS', stroke: '#2471a3', width: 1.5, value: (u, v) => (v === null ? '-' : fmtSize(v))},
            ],
            cursor: {drag: {x: true, y: false}},
            hooks: {draw: [(u) => drawMarks(u, peak, marks)]},
        };
        plot = new uPlot(opts, [s.t, s.heap, s.mmap || s.t.map(() => 0), s.rss], box);
        let down = null;
        plot.over.addEventListener('mousedown', (e) => { down = [e.clientX, e.clientY]; });
        plot.over.addEventListener('mouseup', (e) => {
            if (down && Math.abs(e.clientX - down[0]) < 3 && Math.abs(e.clientY - down[1]) < 3)
                showAt(plot.posToVal(plot.cursor.left, 'x'));
            down = null;
        });
    }

    /* The peak, the marks and the clicked time, over the series. */
    function drawMarks(u, peak, marks) {
        const ctx = u.ctx;
        const top = u.bbox.top;
        const bottom = u.bbox.top + u.bbox.height;
        const dpr = window.devicePixelRatio || 1;
        ctx.save();
        ctx.font = (11 * dpr) + 'px system-ui, sans-serif';
        const vline = (t, color, dash, label, row) => {
            const x = Math.round(u.valToPos(t, 'x', true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width)
                return;
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.setLineDash(dash);
            ctx.lineWidth = dpr;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, bottom);
            ctx.stroke();
            if (label)
                ctx.fillText(label, x + 3 * dpr, top + (12 + 13 * row) * dpr);
        };
        marks.forEach((m, i) => vline(m.t, '#7d3c98', [4 * dpr, 3 * dpr], m.label, i % 3));
        if (peak) {
            vline(peak.t, '#c0392b', [], null, 0);
            const x = u.valToPos(peak.t, 'x', true);
            const y = u.valToPos(peak.bytes, 'y', true);
            ctx.beginPath();
            ctx.arc(x, y, 4 * dpr, 0, 2 * Math.PI);
            ctx.fill();
            ctx.fillText('peak ' + fmtSize(peak.bytes), x + 6 * dpr, Math.max(top + 12 * dpr, y - 6 * dpr));
        }
        if (clickedT !== null)
            vline(clickedT, '#1d2230', [2 * dpr, 2 * dpr], null, 0);
        ctx.restore();
    }

    /* The top lines live at time `t`: the live set kept nearest at or before it. */
    function showAt(t) {
        if (t === null || isNaN(t))
            return;
        clickedT = Math.max(0, t);
        plot.redraw(false);
        const set = liveOrSetAt(clickedT);
        $('at-time').hidden = false;
        $('at-time-title').textContent = 'Live at ' + fmtTime(clickedT);
        const s = P.samples;
        let i = 0;
        while (i + 1 < s.t.length && s.t[i + 1] <= clickedT)
            i++;
        const heapThen = s.t.length ? ' The sample then: heap ' + fmtSize(s.heap[i]) +
            (s.mmap ? ', mmap ' + fmtSize(s.mmap[i]) : '') + ', RSS ' +
            fmtSize(s.rss[i]) + (s.allocations ? ', ' + fmtCount(s.allocations[i]) + ' allocations (' +
            fmtCount(s.temporary[i]) + ' temporary) so far' : '') + ' at ' + fmtTime(s.t[i]) + '.' : '';
        if (!set) {
            $('at-time-note').textContent = 'No live set was kept at or before ' + fmtTime(clickedT) +
                ' (this capture keeps them at the peak, the marks and exit' +
                (P.steps ? ', and rebuilds them at each sample tick' : '') + ').' + heapThen;
            $('at-time-table').replaceChildren();
            return;
        }
        if (set.kind === 'live')
            $('at-time-note').textContent = fmtSize(set.bytes) + ' in ' + fmtCount(set.blocks) +
                ' blocks, rebuilt from the changes by site up to ' + fmtTime(set.stepT) + '.' + heapThen;
        else
            $('at-time-note').textContent = 'The lines of the live set kept nearest at or before it: ' +
                setName(set) + ', ' + fmtSize(set.bytes) + ' in ' + fmtCount(set.blocks) + ' blocks' +
                (P.steps ? '' : ' (this capture has no changes by site to rebuild any moment)') + '.' +
                heapThen;
        fillStats($('at-time-table'), statistics(set, 'lineno'), 'lineno', 10, otherNote(set, 'lineno'));
        P.clicked = set; /* a choice of the flame graph from now on */
        if ($('flame-metric').value === 'clicked')
            drawFlame();
        else
            fillFlameChoices(flameChoices());
    }

    /* ---- flame graph ---- */

    /* The choices: live sets (bytes), allocations (count and bytes); temporary only if the capture
     * has them per site. */
    function flameChoices() {
        const c = [];
        const peak = setOfKind('peak');
        const exit = setOfKind('exit');
        if (peak)
            c.push({id: 'peak', name: 'bytes live at the peak', entries: peak.entries, col: 1, unit: 'bytes', other: peak.other});
        if (exit)
            c.push({id: 'exit', name: 'bytes leaked at exit', entries: exit.entries, col: 1, unit: 'bytes', other: exit.other});
        for (const k of Object.keys(LEAK_KINDS)) {
            const set = P.leaks ? P.leaks[k] : null;
            if (set && set.entries)
                c.push({id: 'leak-' + k, name: 'bytes ' + LEAK_KINDS[k] + ' at exit', entries: set.entries,
                    col: 1, unit: 'bytes', other: set.other});
        }
        if (P.allocations) {
            c.push({id: 'allocations', name: 'allocations in all', entries: P.allocations.entries, col: 1,
                unit: 'allocations', other: P.allocations.other});
            c.push({id: 'allocated', name: 'bytes allocated in all', entries: P.allocations.entries, col: 2,
                unit: 'bytes', other: [P.allocations.other[1], 0, P.allocations.other[2]]});
        }
        if (P.temporary)
            c.push({id: 'temporary', name: 'temporary allocations', entries: P.temporary.entries, col: 1,
                unit: 'allocations', other: P.temporary.other});
        if (P.clicked)
            c.push({id: 'clicked', name: 'bytes live at ' + fmtTime(P.clicked.t) + ' (clicked)',
                entries: P.clicked.entries, col: 1, unit: 'bytes', other: P.clicked.other});
        for (const s of kept())
            if (s.kind === 'mark')
                c.push({id: 'mark' + s.t, name: 'bytes live at mark \u201c' + s.label + '\u201d', entries: s.entries,
                    col: 1, unit: 'bytes', other: s.other});
        return c;
    }

    /* A tree of frames, outermost at the root, each node's value the total through it. */
    function flameTree(choice) {
        const root = {name: 'all', value: 0, children: [], f: -1, kids: new Map()};
        for (const e of choice.entries) {
            const v = e[choice.col];
            if (!v)
                continue;
            root.value += v;
            let node = root;
            for (const f of T[e[0]]) {
                let child = node.kids.get(f);
                if (!child) {
                    const fn = frameFn(f);
                    child = {name: fn || frameWhere(f), value: 0, children: [], f: f, kids: new Map()};
                    node.kids.set(f, child);
                    node.children.push(child);
                }
                child.value += v;
                node = child;
            }
        }
        if (choice.other && choice.other[0] > 0) {
            root.value += choice.other[0];
            root.children.push({name: '(' + choice.other[2] + ' smaller sites)', value: choice.other[0],
                children: [], f: -1, kids: null});
        }
        (function strip(n) { /* the maps only served the build */
            delete n.kids;
            n.children.forEach(strip);
        })(root);
        return root;
    }

    function flameLabel(unit, total) {
        const fmt = unit === 'bytes' ? (v) => fmtSize(v) : (v) => fmtCount(v) + ' allocations';
        return (d) => {
            const f = d.data.f;
            const v = d.value !== undefined ? d.value : d.data.value;
            const parts = [f >= 0 ? (frameFn(f) || '?') : d.data.name];
            if (f >= 0) {
                parts.push(frameWhere(f));
                if (frameModule(f))
                    parts.push(basename(frameModule(f)) + (F[f][4] ? ', inlined' : ''));
            }
            parts.push(fmt(v) + ' (' + pct(v, total) + ')');
            return parts.join(' \u2014 ');
        };
    }

    /* The choices in the selector, keeping the one selected if it is still there. */
    function fillFlameChoices(choices) {
        const sel = $('flame-metric');
        const prev = sel.value;
        sel.replaceChildren(...choices.map((c) => el('option', {value: c.id}, c.name)));
        if (choices.some((c) => c.id === prev))
            sel.value = prev;
    }

    function drawFlame() {
        const choices = flameChoices();
        const sel = $('flame-metric');
        fillFlameChoices(choices);
        $('flame-note').textContent = P.temporary ? '' : P.totals
            ? 'temporary allocations: this capture counts ' + fmtCount(P.totals.temporary) +
              ' but not where they were made, so they have no graph'
            : 'temporary allocations: this capture does not say where they were made';
        renderFlame(choices.find((c) => c.id === sel.value) || choices[0]);
    }

    function renderFlame(choice) {
        const box = $('flame');
        if (flame)
            flame.destroy();
        flame = null;
        box.replaceChildren();
        $('flame-details').textContent = '';
        if (!choice || choice.entries === null) {
            box.append(el('p', {class: 'hint'}, 'nothing to draw'));
            return;
        }
        const tree = flameTree(choice);
        if (tree.value === 0) {
            box.append(el('p', {class: 'hint'}, 'nothing: ' + choice.name + ' is 0'));
            return;
        }
        const label = flameLabel(choice.unit, tree.value);
        const fmtTotal = choice.unit === 'bytes' ? fmtSize : fmtCount;
        flame = flamegraph.default()
            .width(Math.max(400, box.clientWidth))
            .cellHeight(18)
            .minFrameSize(1)
            .transitionDuration(250)
            .selfValue(false)
            .sort(true)
            .setLabelHandler(label)
            .setDetailsElement($('flame-details'))
            .setSearchMatch((d, term) => {
                if (!term)
                    return false;
                const f = d.data.f;
                const hay = (d.data.name + ' ' + (f >= 0 ? frameWhere(f) + ' ' + (frameModule(f) || '') : '')).toLowerCase();
                return hay.includes(term.toLowerCase());
            })
            .setSearchHandler((results, sum, total) => {
                $('flame-details').textContent = results.length ? 'search: ' + results.length + ' frames, ' +
                    fmtTotal(sum) + ' of ' + fmtTotal(total) + ' (' + pct(sum, total) + ')' : 'search: no frame matches';
            })
            .setColorMapper((d, original) => (d.highlight ? '#e600e6' : original));
        d3.select(box).datum(tree).call(flame);
        const term = $('flame-search').value;
        if (term)
            flame.search(term);
    }

    /* ---- processes ---- */

    function showProcess(i) {
        P = D.processes[i];
        P.clicked = null;
        document.title = 'zw report: ' + (P.argv[0] ? basename(P.argv[0]) : P.path);
        /* a long command line is elided by the style sheet; the whole of it on hover */
        $('title').textContent = P.argv.join(' ') + '  (' + P.path + ')';
        $('title').title = $('title').textContent;
        const warn = [];
        if (!P.complete)
            warn.push('This capture is incomplete: the process ended before writing all of it. ' +
                'The report shows what was written.');
        $('warning').hidden = warn.length === 0;
        $('warning').textContent = warn.join(' ');
        drawSummary();
        drawChart();
        drawFlame();
        setOptions($('top-set'), setOfKind('peak') || kept()[0]);
        drawTop();
        drawLeaks();
        drawAllocations();
        const sets = kept();
        setOptions($('cmp-from'), sets[0]);
        setOptions($('cmp-to'), setOfKind('exit') || sets[sets.length - 1]);
        drawCompare();
    }

    function init() {
        const t0 = performance.now();
        const procs = D.processes;
        /* the page opens on the process of the largest peak (a compiler rather than its driver,
         * a command rather than its shell), as zw run's summary */
        const peakOf = (p) => (p.totals ? p.totals.peak_bytes : 0);
        let first = 0;
        procs.forEach((p, i) => {
            if (peakOf(p) > peakOf(procs[first]))
                first = i;
        });
        if (procs.length > 1) {
            $('process-box').hidden = false;
            procs.forEach((p, i) => {
                const text = 'pid ' + p.pid + ' (parent ' + p.ppid + '): ' + (p.argv.join(' ') || p.path);
                $('process').append(el('option', {value: i, title: text},
                    text.length > 90 ? text.slice(0, 89) + '\u2026' : text));
            });
            $('process').value = String(first);
            $('process-hint').textContent = procs.length + ' processes; opened on the largest peak';
            $('process').addEventListener('change', () => showProcess(+$('process').value));
        }
        $('flame-metric').addEventListener('change', () =>
            renderFlame(flameChoices().find((c) => c.id === $('flame-metric').value)));
        $('flame-search').addEventListener('input', () => {
            if (flame)
                $('flame-search').value ? flame.search($('flame-search').value) : flame.clear();
        });
        $('flame-reset').addEventListener('click', () => flame && flame.resetZoom());
        $('leaks-kind').addEventListener('change', drawLeaks);
        for (const id of ['top-set', 'top-group', 'top-limit'])
            $(id).addEventListener('change', drawTop);
        for (const id of ['cmp-from', 'cmp-to', 'cmp-group'])
            $(id).addEventListener('change', drawCompare);
        for (const id of ['cmp-from-t', 'cmp-to-t'])
            $(id).addEventListener('input', drawCompare);
        let resize = null;
        window.addEventListener('resize', () => {
            clearTimeout(resize);
            resize = setTimeout(() => {
                if (plot)
                    plot.setSize({width: Math.max(400, $('chart').clientWidth), height: 320});
                renderFlame(flameChoices().find((c) => c.id === $('flame-metric').value));
            }, 200);
        });
        /* frames the tables name without a line: which modules lack debug information, and
         * how to get it (zw's own note on stderr, same words) */
        const nd = D.nodebug;
        if (nd && nd.modules.length > 0) {
            $('nodebug').hidden = false;
            $('nodebug').textContent = 'No debug information for ' + nd.modules.join(', ') +
                (nd.more ? ' and more' : '') + ': their frames show as module+0xoffset, without ' +
                'a line. To see their lines, ' + nd.how + '.';
        }
        showProcess(first);
        window.zwReport = {ready: true, drawMs: performance.now() - t0, data: D, showAt: showAt,
            showProcess: showProcess, plot: () => plot, process: () => P,
            /* the page's rows in zw's JSON form: of a kept set ('peak', 'exit', a mark's label)
             * or of the live set at a time in seconds; and of the comparison of two such sets */
            top: (at, grouping) => cliRows(statistics(setNamed(at), grouping), grouping),
            /* the rows of a leak kind as zw leaks --kind KIND --json prints them */
            leaks: (kind) => (P.leaks && P.leaks[kind] && P.leaks[kind].entries
                ? cliRows(statistics(P.leaks[kind], 'traceback'), 'traceback').map((r) =>
                    Object.assign({kind: kind}, r)) : null),
            compare: (from, to, grouping) =>
                cliRows(compare(setNamed(from), setNamed(to), grouping), grouping)};
    }

    try {
        init();
    } catch (e) {
        document.body.prepend(el('div', {class: 'warning'}, 'zw report: the page could not be drawn: ' + e));
        throw e;
    }
})();
