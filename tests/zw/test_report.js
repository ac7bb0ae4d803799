// tests/zw/test_report.js NODE_MODULES REPORT.html SCREENSHOT.png [LINE...] - opens a page of
// `zw report` in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) and
// checks what a person would look at: no console error or page error, no request leaves the page
// (it is self-contained), the chart is drawn (uPlot's canvas has non-blank pixels), the flame
// graph holds frames of the program's functions with their bytes, and the tables list the known
// lines ("file.c:LINE" for each LINE argument; FUNC=NAME arguments name functions that the flame
// graph must show; PROCESSES=N: the process selector offers N processes, each drawn; INCOMPLETE:
// only that the page says the capture was cut short, and throws nothing; LEAKS: the capture has
// leak kinds, and the Leaks panel's kind selector shows each kind's rows; LEAKS=all: and every
// kind has some; NODEBUG=none: the page has no note on debug information; NODEBUG=TEXT: its note
// names a module ending in TEXT and says how to get the debug information). Clicking the chart
// shows the lines live then.
// ZW=PATH CAPTURE=FILE: the page's rows agree with the zw command's on FILE, the capture the page
// shows: those of each kept set (prepared in C) with `zw top --at SET --json`, those of the live
// set at a few times (grouped by the page) with `zw top --at SECONDS`, and the page's comparisons
// with `zw compare`, for each --group, and each leak kind's rows with `zw leaks --kind KIND`. Writes SCREENSHOT.png and prints the time from navigation
// until the page is drawn.
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const [nodeModules, page_, shot, ...wants] = process.argv.slice(2);
const { chromium } = require(path.resolve(nodeModules, 'playwright-core'));

let fails = 0;
function check(ok, what) {
    console.log((ok ? 'ok: ' : 'FAIL: ') + what);
    if (!ok)
        fails++;
}

let agreed = 0; /* rows found the same */

// The rows of `zw ARGS --json --limit 0` and of the page's `fn(...args)` are the same.
async function same(page, zwPath, cliArgs, fn, args) {
    let cli;
    try {
        cli = JSON.parse(execFileSync(zwPath, cliArgs.concat(['--json', '--limit', '0']), { encoding: 'utf8' }));
    } catch (e) {
        check(false, `zw ${cliArgs.join(' ')}: ${e.message}`);
        return;
    }
    const rows = await page.evaluate(([f, a]) => window.zwReport[f](...a), [fn, args]);
    const a = JSON.stringify(cli), b = JSON.stringify(rows);
    let detail = '';
    if (a !== b) {
        const i = cli.findIndex((r, k) => JSON.stringify(r) !== JSON.stringify(rows[k]));
        detail = `: ${cli.length} rows vs ${rows.length}; row ${i}: zw ${JSON.stringify(cli[i])}, ` +
            `page ${JSON.stringify(rows[i])}`;
    }
    agreed += a === b ? cli.length : 0;
    check(a === b, `the page's ${fn}(${args.join(', ')}) is zw ${cliArgs.slice(0, -1).join(' ')} (${cli.length} rows)${detail}`);
}

async function agree(page, zwPath, capture) {
    const info = await page.evaluate(() => {
        const p = window.zwReport.process();
        const sets = p.sets.filter((s) => s.entries !== null).map((s) => (s.kind === 'mark' ? s.label : s.kind));
        const t = p.steps ? p.steps.t : [];
        /* midway between kept steps: no rounding of a step's time decides which side it falls */
        const times = t.length < 4 ? [] : [0.25, 0.5, 0.75].map((q) => {
            const k = Math.floor(q * (t.length - 1));
            return +((t[k] + t[k + 1]) / 2).toFixed(7);
        });
        return { sets, times };
    });
    check(info.sets.length > 0, `the page has kept sets: ${info.sets.join(', ')}`);
    for (const g of ['lineno', 'filename', 'traceback']) {
        for (const s of info.sets)
            await same(page, zwPath, ['top', '--at', s, '--group', g, capture], 'top', [s, g]);
        for (const t of info.times)
            await same(page, zwPath, ['top', '--at', String(t), '--group', g, capture], 'top', [t, g]);
        if (info.sets.includes('peak') && info.sets.includes('exit'))
            await same(page, zwPath, ['compare', '--from', 'peak', '--to', 'exit', '--group', g, capture],
                'compare', ['peak', 'exit', g]);
        if (info.times.length > 0)
            await same(page, zwPath, ['compare', '--from', String(info.times[0]), '--to',
                String(info.times[2]), '--group', g, capture], 'compare', [info.times[0], info.times[2], g]);
    }
    // the leak kinds: each kind's rows are zw leaks --kind KIND's
    const kinds = await page.evaluate(() => (window.zwReport.process().leaks ? true : false));
    if (kinds)
        for (const k of ['definite', 'indirect', 'possible', 'reachable'])
            await same(page, zwPath, ['leaks', '--kind', k, '--group', 'traceback', capture], 'leaks', [k]);
    check(agreed > 0, `${agreed} rows of the page and of zw agree`);
}

(async () => {
    const browser = await chromium.launch({
        executablePath: process.env.ZW_CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    const requests = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
    const t0 = Date.now();
    await page.goto('file://' + path.resolve(page_));
    try {
        await page.waitForFunction(() => window.zwReport && window.zwReport.ready, null, { timeout: 20000 });
    } catch (e) {
        throw new Error('the page was not drawn: ' + (errors.join(' | ') || e.message));
    }
    const openMs = Date.now() - t0;
    const drawMs = await page.evaluate(() => window.zwReport.drawMs);
    console.log(`opened and drawn in ${openMs} ms (the page's own drawing: ${drawMs.toFixed(0)} ms)`);
    await page.waitForTimeout(700); // the flame graph's labels appear after its transition

    // a capture cut short: the page says so, draws what there is and throws nothing
    if (wants.includes('INCOMPLETE')) {
        const warning = await page.locator('#warning').innerText();
        check(/incomplete/.test(warning), `the page says the capture is incomplete: ${warning}`);
        await page.screenshot({ path: shot, fullPage: true });
        check(errors.length === 0, 'no console errors' + (errors.length ? ': ' + errors.join(' | ') : ''));
        await browser.close();
        process.exit(fails ? 1 : 0);
    }

    // the chart: uPlot's canvas with pixels that are not all one colour
    const chart = await page.evaluate(() => {
        const c = document.querySelector('#chart canvas');
        if (!c)
            return { canvas: false };
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        for (let i = 0; i < px.length && colours.size < 50; i += 4 * 97)
            colours.add(px[i] << 24 | px[i + 1] << 16 | px[i + 2] << 8 | px[i + 3]);
        return { canvas: true, colours: colours.size, legend: document.querySelector('#chart .u-legend') !== null };
    });
    check(chart.canvas && chart.colours > 2, `the chart's canvas is drawn (${chart.colours} colours sampled)`);
    check(chart.legend, "the chart has uPlot's legend");

    // the flame graph: frames of the program's functions, each with its bytes
    const frames = await page.$$eval('#flame svg g.frame', (gs) => gs.map((g) => ({
        name: g.getAttribute('name'), title: (g.querySelector('title') || {}).textContent || '' })));
    check(frames.length >= 2, `the flame graph has ${frames.length} frames`);
    for (const w of wants.filter((x) => x.startsWith('FUNC='))) {
        const fn = w.slice(5);
        const f = frames.find((x) => x.name === fn);
        check(f && /\d+(\.\d)? (B|KiB|MiB|GiB) \(/.test(f.title), `flame graph frame ${fn}: ${f ? f.title : 'missing'}`);
    }

    // the tables: top by line at the peak, the leaks, the allocations, the compare
    const tables = await page.evaluate(() => ['top-table', 'leaks-table', 'allocs-table', 'cmp-table']
        .map((id) => document.getElementById(id).innerText));
    const all = tables.join('\n');
    for (const w of wants.filter((x) => !/^(FUNC|PROCESSES|ZW|CAPTURE|LARGEST|LEAKS|NODEBUG)=/.test(x) && x !== 'LEAKS'))
        check(all.includes(w), `the tables list ${w}`);
    check(/\d/.test(tables[1]) && tables[1].split('\n').length > 1, 'the leaks table has rows');

    // the note on modules without debug information: there when a row's frame has no line
    const nodebug = (wants.find((x) => x.startsWith('NODEBUG=')) || '').slice(8);
    if (nodebug) {
        const note = await page.evaluate(() => {
            const n = document.getElementById('nodebug');
            return { shown: !n.hidden && n.offsetHeight > 0, text: n.textContent };
        });
        if (nodebug === 'none')
            check(!note.shown, `no note on debug information${note.shown ? ': ' + note.text : ''}`);
        else
            check(note.shown && (note.text.includes(nodebug + ':') || note.text.includes(nodebug + ',')) &&
                /-dbgsym/.test(note.text) && /DEBUGINFOD_URLS/.test(note.text),
                `the note names ${nodebug} and how to get its debug information: ${note.text}`);
    }

    // the page's rows against zw's on the same capture
    const zw = (wants.find((x) => x.startsWith('ZW=')) || '').slice(3);
    const capture = (wants.find((x) => x.startsWith('CAPTURE=')) || '').slice(8);
    if (zw && capture)
        await agree(page, zw, capture);

    // the Leaks panel's kind selector: each kind shows that kind's rows (blocks column), and
    // the flame graph offers each kind
    const leakRows = async () => page.$$eval('#leaks-table tr', (trs) => trs
        .filter((tr) => tr.cells.length === 5 && /^\d+$/.test(tr.cells[0].innerText))
        .map((tr) => +tr.cells[2].innerText.replace(/\D/g, '')));
    const leaksAll = wants.includes('LEAKS=all'); /* every kind has blocks */
    if (wants.includes('LEAKS') || leaksAll) {
        const has = await page.evaluate(() => window.zwReport.process().leaks !== null);
        check(has, 'the capture has leak kinds and the page has them');
        const allRows = await leakRows();
        let differs = false;
        for (const k of ['definite', 'indirect', 'possible', 'reachable']) {
            await page.selectOption('#leaks-kind', k);
            const want = await page.evaluate((kind) => (window.zwReport.leaks(kind) || [])
                .slice(0, 25).map((r) => r.blocks), k);
            const got = await leakRows();
            differs = differs || JSON.stringify(got) !== JSON.stringify(allRows);
            check(has && JSON.stringify(got) === JSON.stringify(want),
                `the Leaks panel's ${k} rows are that kind's (${got.length} rows)`);
            const flame = await page.$$eval('#flame-metric option', (os) => os.map((o) => o.value));
            const nonEmpty = await page.evaluate((kind) => (window.zwReport.leaks(kind) || []).length > 0, k);
            if (leaksAll)
                check(nonEmpty && got.length > 0, `the Leaks panel has ${k} rows`);
            check(!nonEmpty || flame.includes('leak-' + k), `the flame graph offers ${k}`);
        }
        check(differs, 'switching the kind changes the Leaks panel');
        await page.selectOption('#leaks-kind', 'all');
    }

    // click the chart just after the peak (or in its middle): the lines live then
    const box = await page.locator('#chart .u-over').boundingBox();
    const peakX = await page.evaluate(() => {
        const p = window.zwReport.process();
        return p.totals ? window.zwReport.plot().valToPos(p.totals.peak_t, 'x') : null;
    });
    const x = peakX !== null ? Math.min(box.width - 1, peakX + 2) : box.width * 0.6;
    await page.mouse.click(box.x + x, box.y + box.height / 2);
    const at = await page.locator('#at-time').innerText();
    const lines = wants.some((x) => /\.c:\d+$/.test(x));
    check(/Live at [\d.]+ s/.test(at) && (!lines || /\.c:\d+/.test(at)),
        'a click on the chart shows the lines live then');

    // the flame graph's search
    await page.fill('#flame-search', 'main');
    const found = await page.locator('#flame-details').innerText();
    check(/search: \d+ frames/.test(found), `searching the flame graph: ${found}`);
    await page.fill('#flame-search', '');

    // the flame graph of the live set at the clicked time
    await page.selectOption('#flame-metric', 'clicked');
    await page.waitForTimeout(700);
    const clicked = await page.$$eval('#flame svg g.frame', (gs) => gs.length);
    check(clicked >= 2, `the flame graph of the clicked time has ${clicked} frames`);
    await page.selectOption('#flame-metric', 'peak');
    await page.waitForTimeout(700);

    // the page opens on the process of the largest peak; it is never wider than the window
    const largest = wants.find((x) => x.startsWith('LARGEST='));
    if (largest) {
        const opened = await page.evaluate(() => {
            const p = window.zwReport.process(), all = window.zwReport.data.processes;
            const peak = (q) => (q.totals ? q.totals.peak_bytes : 0);
            return { argv0: p.argv[0] || '', largest: all.every((q) => peak(q) <= peak(p)) };
        });
        check(opened.largest && opened.argv0.endsWith(largest.slice(8)),
            `the page opens on the largest peak, ${opened.argv0}`);
    }
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(widths[0] <= widths[1], `the page is ${widths[0]} px wide in a window of ${widths[1]} px`);

    // the process selector, when the capture set holds a process tree
    const procs = wants.find((x) => x.startsWith('PROCESSES='));
    if (procs) {
        const n = +procs.slice(10);
        const options = await page.$$eval('#process option', (os) => os.map((o) => o.value));
        check(options.length === n && await page.locator('#process-box').isVisible(),
            `the process selector offers ${options.length} processes`);
        for (const v of options.slice(1).concat(options[0])) {
            await page.selectOption('#process', v);
            const pid = await page.locator('#summary').innerText();
            check(/pid \d+, parent \d+/.test(pid), `process ${v} is drawn`);
        }
    }

    await page.screenshot({ path: shot, fullPage: true });
    check(errors.length === 0, 'no console errors' + (errors.length ? ': ' + errors.join(' | ') : ''));
    check(requests.length === 0, 'no request leaves the page' + (requests.length ? ': ' + requests.join(' ') : ''));
    await browser.close();
    console.log(`screenshot: ${shot}`);
    process.exit(fails ? 1 : 0);
})().catch((e) => {
    console.error('FAIL: ' + (e && e.stack || e));
    process.exit(1);
});
