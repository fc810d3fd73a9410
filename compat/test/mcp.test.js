// The official MCP TypeScript client (@modelcontextprotocol/sdk) on /mcp
// and /mcp/skills with an end-user key: initialize, list tools, call them
// (a skill created, found and fetched back), a tool error as an isError
// result, and a bad key as the transport's typed error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Stack } from './stack.js';

let s, user;
before(async () => {
  s = await Stack.start();
  user = await s.endUser('mcp-client');
});
after(() => s?.stop());

async function connect(path, key) {
  const client = new Client({ name: 'assistiv-compat', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(s.url + path), {
    requestInit: { headers: { Authorization: 'Bearer ' + key } },
  });
  await client.connect(transport);
  return client;
}

const skillTools = ['create_skill', 'delete_skill', 'fetch_skill', 'find_skill', 'submit_skill_review'];

for (const path of ['/mcp', '/mcp/skills']) {
  test(`mcp-ts ${path}: initialize, list tools, create, find and fetch a skill`, async () => {
    const c = await connect(path, user.key);
    try {
      assert.ok(c.getServerVersion()?.name, 'server info');
      const { tools } = await c.listTools();
      const names = tools.map((t) => t.name).sort();
      for (const want of skillTools) assert.ok(names.includes(want), `${want} missing from ${names}`);
      for (const t of tools) assert.equal(t.inputSchema.type, 'object', t.name);

      const name = `compat skill ${path}`;
      const created = await c.callTool({ name: 'create_skill', arguments: {
        name, description: 'Says hello from the compat matrix',
        files: [{ path: 'SKILL.md', content: `# ${name}\n\nGreet the user warmly.\n` }],
      } });
      assert.ok(!created.isError, JSON.stringify(created));
      const id = JSON.parse(created.content[0].text).id;
      assert.match(id, /^skill_/);

      const found = await c.callTool({ name: 'find_skill', arguments: { query: 'compat matrix hello' } });
      assert.ok(!found.isError, JSON.stringify(found));
      assert.ok(JSON.parse(found.content[0].text).skills.some((sk) => sk.skill_id === id), found.content[0].text);

      const fetched = await c.callTool({ name: 'fetch_skill', arguments: { skill_id: id } });
      assert.ok(!fetched.isError, JSON.stringify(fetched));
      assert.match(fetched.content[0].text, /Greet the user warmly/);

      // A tool failure is a result with isError, not a protocol error.
      const missing = await c.callTool({ name: 'fetch_skill', arguments: { skill_id: 'skill_does_not_exist' } });
      assert.equal(missing.isError, true);
    } finally {
      await c.close();
    }
  });

  test(`mcp-ts ${path}: a bad key is a StreamableHTTPError 401`, async () => {
    await assert.rejects(connect(path, 'sk-eu_not-a-real-key'), (e) => {
      assert.ok(e instanceof StreamableHTTPError || /401/.test(String(e.message)), `${e.constructor.name}: ${e.message}`);
      if (e instanceof StreamableHTTPError) assert.equal(e.code, 401);
      return true;
    });
  });
}
