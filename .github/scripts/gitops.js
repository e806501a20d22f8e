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

// Create or update the one comment of a pull request that starts with `marker`.
async function upsertComment({ github, context, issue_number, marker, body }) {
  const text = body.startsWith(marker) ? body : `${marker}\n${body}`;
  const { owner, repo } = context.repo;
  const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number });
  const mine = comments.find((c) => c.body && c.body.startsWith(marker));
  if (mine) {
    await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body: text });
  } else {
    await github.rest.issues.createComment({ owner, repo, issue_number, body: text });
  }
}

module.exports = { callFunction, upsertComment };
