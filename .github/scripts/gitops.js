// Helpers shared by the workflows (loaded with require() from actions/github-script steps).

// Call a finetune-gitops Function: the function key and, when an audience is given, a GitHub OIDC token.
async function callFunction({ core, path, method = 'POST', body, audience }) {
  const headers = { 'x-functions-key': process.env.FUNCTION_KEY };
  if (audience) headers.Authorization = `Bearer ${await core.getIDToken(audience)}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${process.env.FUNCTION_URL}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res;
}

// Create or update the one comment of a pull request that starts with `marker`; a comment that already says the
// same is left alone (no notification, no "edited" mark). Answers 'created', 'updated' or 'unchanged'.
async function upsertComment({ github, context, issue_number, marker, body }) {
  const text = body.startsWith(marker) ? body : `${marker}\n${body}`;
  const { owner, repo } = context.repo;
  const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number });
  const mine = comments.find((c) => c.body && c.body.startsWith(marker));
  if (mine && mine.body === text) return 'unchanged';
  if (mine) {
    await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body: text });
    return 'updated';
  }
  await github.rest.issues.createComment({ owner, repo, issue_number, body: text });
  return 'created';
}

// Post each live run's report to the pull request that merged it: one comment per run, kept up to date when a
// new version goes live. `only`: one run's name (a person's dispatch), else every live run with a pull request.
// `audience`: the Function's OIDC audience; reading the ledger needs this repository's token, not the key alone.
async function postReports({ core, github, context, only, audience }) {
  const listed = await callFunction({ core, method: 'GET', path: '/api/runs', audience });
  if (!listed.ok) throw new Error(`GET /api/runs answered ${listed.status}`);
  const { runs, unreadable } = await listed.json();
  for (const why of unreadable || []) core.warning(`ledger: ${why}`);
  const done = [];
  for (const r of runs) {
    if ((only && r.run !== only) || r.status !== 'live' || !r.report_job) continue;
    const pr = Number(r.pr);
    if (!Number.isInteger(pr) || pr <= 0) continue;  // merged without a pull request: nowhere to post
    const res = await callFunction({ core, method: 'GET', path: `/api/runs/${encodeURIComponent(r.run)}?format=markdown`, audience });
    if (!res.ok) {
      core.warning(`no report for ${r.run} (${res.status})`);
      continue;
    }
    const action = await upsertComment({ github, context, issue_number: pr, marker: `<!-- finetune-gitops:report:${r.run} -->`,
                                         body: await res.text() });
    done.push({ run: r.run, pr, action });
  }
  return done;
}

// The name promote.yml gives the job that releases one promotion: what a later round recognises it by, waiting for
// its environment's reviewers. The promotion's job is in it, so a newer version's promotion is another job.
const releaseJobName = (p) => `release ${p.run} to ${p.to} (${p.job})`;

// What promote.yml starts this round: each promotion due that asks for an approval and has no job waiting for it
// yet (a waiting job's reviewers see one request, not one per hour). A waiting run whose promotion is no longer due
// (a newer version superseded it, or it was released) is cancelled: its reviewers are never asked for a stale one,
// and the Function would refuse it anyway. Answers { start, cancelled }.
async function planReleases({ core, github, context, audience }) {
  const listed = await callFunction({ core, method: 'GET', path: '/api/promotions', audience });
  if (!listed.ok) throw new Error(`GET /api/promotions answered ${listed.status}`);
  const due = ((await listed.json()).promotions || []).filter((p) => p.approval);
  const wanted = new Set(due.map(releaseJobName));
  const { owner, repo } = context.repo;
  const runs = await github.paginate(github.rest.actions.listWorkflowRuns,
                                     { owner, repo, workflow_id: 'promote.yml', status: 'waiting' });
  const waiting = new Set();
  const cancelled = [];
  for (const run of runs) {
    if (run.id === context.runId) continue;
    const jobs = await github.paginate(github.rest.actions.listJobsForWorkflowRun, { owner, repo, run_id: run.id });
    const names = jobs.filter((j) => j.status !== 'completed').map((j) => j.name).filter((n) => n.startsWith('release '));
    if (names.length && names.every((n) => !wanted.has(n))) {
      await github.rest.actions.cancelWorkflowRun({ owner, repo, run_id: run.id });
      cancelled.push(run.id);
      continue;
    }
    names.forEach((n) => waiting.add(n));
  }
  return { start: due.filter((p) => !waiting.has(releaseJobName(p))), cancelled };
}

const WATCH_MARKER = '<!-- finetune-gitops:watch -->';
const WATCH_LABEL = 'finetune-gitops-watch';

// Keep ONE open issue for the watch's findings: created when there are findings, edited in place while they change
// (left alone when they did not), closed with a comment when they are gone. `report`: GET /api/watch's answer.
// Answers 'created', 'updated', 'unchanged', 'closed' or 'none'.
async function keepWatchIssue({ github, context, report }) {
  const { owner, repo } = context.repo;
  const listed = await github.paginate(github.rest.issues.listForRepo, { owner, repo, state: 'open', labels: WATCH_LABEL });
  const open = listed.filter((i) => !i.pull_request && i.body && i.body.startsWith(WATCH_MARKER));
  const findings = report.findings || [];
  if (!findings.length) {
    for (const issue of open) {
      await github.rest.issues.createComment({ owner, repo, issue_number: issue.number,
                                               body: `No findings in the watch of ${report.at}: closing.` });
      await github.rest.issues.update({ owner, repo, issue_number: issue.number, state: 'closed', state_reason: 'completed' });
    }
    return open.length ? 'closed' : 'none';
  }
  const title = `finetune-gitops watch: ${findings.length} finding(s)`;
  const [mine, ...duplicates] = open;
  for (const issue of duplicates) {  // one issue only: a second one (made by hand, or by a race) is closed
    await github.rest.issues.update({ owner, repo, issue_number: issue.number, state: 'closed', state_reason: 'not_planned' });
  }
  if (!mine) {
    await github.rest.issues.create({ owner, repo, title, body: report.markdown, labels: [WATCH_LABEL] });
    return 'created';
  }
  if (mine.body === report.markdown && mine.title === title) return 'unchanged';
  await github.rest.issues.update({ owner, repo, issue_number: mine.number, title, body: report.markdown });
  return 'updated';
}

// A job summary is GitHub Markdown in which raw HTML passes and, inside an HTML block, Markdown does not apply. Every
// string a spec, a record or the Function's answer controls is written as HTML-escaped text inside an element: no
// field opens a tag, a link or an image; a line break never ends the block (after a blank line Markdown would apply
// again); and `@`, `#`, `://` and `www.` are broken with a word joiner, as gitops/markdown.py does for comments, since
// GitHub makes mentions, issue links and autolinks from the rendered text.
const WORD_JOINER = '\u2060';
const escapeHtml = (value) => String(value ?? '').replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
function escapeText(value) {
  return escapeHtml(String(value ?? '')
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/([@#])/g, `$1${WORD_JOINER}`)
    .replace(/(www)(\.)|(:)(\/\/)/gi, (m, a, b, c, d) => `${a || c}${WORD_JOINER}${b || d}`));
}

// Only the Azure ML studio is linked from a summary; any other URL is shown as text.
const STUDIO = /^https:\/\/ml\.azure\.com\//;

// One summary: a heading, paragraphs, a list and a table (rows of cells; a cell is a string or { text, href }), as
// HTML with every value escaped (`escapeText`). `writeSummary` appends it to the job's summary.
function summaryHtml({ heading, lines = [], items = [], table = [] }) {
  const cell = (c, tag) => {
    const { text, href } = typeof c === 'object' && c !== null ? c : { text: c };
    const body = href && STUDIO.test(href) ? `<a href="${escapeHtml(href)}">${escapeText(text)}</a>` : escapeText(text);
    return `<${tag}>${body}</${tag}>`;
  };
  const parts = [`<h3>${escapeText(heading)}</h3>`, ...lines.map((l) => `<p>${escapeText(l)}</p>`)];
  if (items.length) parts.push(`<ul>${items.map((i) => `<li>${escapeText(i)}</li>`).join('')}</ul>`);
  if (table.length) {
    const [head, ...rows] = table;
    parts.push(`<table><tr>${head.map((c) => cell(c, 'th')).join('')}</tr>`
               + rows.map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`).join('') + '</table>');
  }
  return `${parts.join('\n')}\n\n`;
}

async function writeSummary(core, parts) {
  await core.summary.addRaw(summaryHtml(parts), true).write();
}

module.exports = {
  callFunction, upsertComment, postReports, keepWatchIssue, planReleases, releaseJobName, summaryHtml, writeSummary,
};
