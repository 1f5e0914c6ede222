// The official MCP TypeScript SDK client against airlock, over stdio or
// Streamable HTTP. Prints one JSON object per step on stdout, for
// tests/e2e/mcp.t to assert on.
//   node client.mjs stdio AIRLOCK_BIN STATE_DIR
//   node client.mjs http URL KEY
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [mode, target, extra] = process.argv.slice(2);
const out = (step, value) => console.log(JSON.stringify({ step, ...value }));

const transport = mode === 'stdio'
  ? new StdioClientTransport({ command: target, args: ['mcp', '--state', extra], stderr: 'ignore' })
  : new StreamableHTTPClientTransport(new URL(target),
      { requestInit: { headers: { Authorization: `Bearer ${extra}` } } });
const client = new Client({ name: 'airlock-e2e', version: '1.0.0' });

const call = async (step, name, args) => {
  try {
    const r = await client.callTool({ name, arguments: args });
    const o = {
      isError: r.isError ?? false,
      text: r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
      images: r.content.filter((c) => c.type === 'image').map((c) => ({ mimeType: c.mimeType, bytes: Buffer.from(c.data, 'base64').length, magic: Buffer.from(c.data, 'base64').subarray(0, 8).toString('hex') })),
      structured: r.structuredContent ?? null,
      types: r.content.map((c) => c.type),
    };
    out(step, o);
    return o;
  } catch (e) {
    out(step, { thrown: true, code: e.code ?? null, message: String(e.message) });
    return null;
  }
};

try {
  await client.connect(transport);
  out('connect', { server: client.getServerVersion(), protocol: transport.protocolVersion ?? null });
  const { tools } = await client.listTools();
  out('tools', { names: tools.map((t) => t.name), schemas: Object.fromEntries(tools.map((t) => [t.name, t.inputSchema])) });
  await call('print', 'run_code', { language: 'python', code: 'print(6 * 7)' });
  await call('plot', 'run_code', {
    language: 'python',
    code: "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.savefig('plot.png')\nprint('saved')\n",
    limits: { memory_mb: 512 },
  });
  await call('timeout', 'run_code', { language: 'python', code: 'while True: pass', limits: { wall_ms: 500 } });
  await call('bad_args', 'run_code', { language: 'python', code: 42 });
  await call('unknown_arg', 'run_code', { language: 'python', code: 'print(1)', privileged: true });
  await call('missing_code', 'run_code', { language: 'python' });
  await call('unknown_language', 'run_code', { language: 'cobol', code: 'DISPLAY 1' });
  await call('check', 'check_code', { language: 'python', code: 'import subprocess\nsubprocess.run(["id"])' });
  await call('languages', 'list_languages', {});
  await call('unknown_tool', 'no_such_tool', {});
  // a session: create, cells sharing state, files both ways, close
  const created = await call('s_create', 'create_session', { language: 'python', idle_timeout_s: 300 });
  const sid = created?.structured?.id ?? 'none';
  await call('s_cell1', 'run_code', { language: 'python', session_id: sid, code: 'x = 6\nimport math' });
  await call('s_cell2', 'run_code', { language: 'python', session_id: sid, code: 'x * 7' });
  await call('s_upload', 'upload_file', { session_id: sid, path: 'data/in.csv', content: 'n\n1\n2\n' });
  await call('s_plot', 'run_code', {
    language: 'python', session_id: sid,
    code: "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\n"
      + "plt.savefig('out.png')\nsum(int(v) for v in open('data/in.csv').read().split()[1:]) + math.floor(math.pi)",
  });
  await call('s_error', 'run_code', { language: 'python', session_id: sid, code: 'def f():\n    return 1 / 0\nf()' });
  await call('s_wrong_lang', 'run_code', { language: 'node', session_id: sid, code: '1' });
  await call('s_get_text', 'download_file', { session_id: sid, path: 'data/in.csv' });
  await call('s_get_png', 'download_file', { session_id: sid, path: 'out.png' });
  await call('s_escape', 'download_file', { session_id: sid, path: '../../etc/passwd' });
  await call('s_close', 'close_session', { session_id: sid });
  await call('s_after', 'run_code', { language: 'python', session_id: sid, code: 'x' });
  await client.close();
  out('closed', {});
} catch (e) {
  out('fatal', { message: String(e && e.stack || e) });
  process.exitCode = 1;
}
