// Parses the AsyncAPI document in the file argv[2] with @asyncapi/parser, the AsyncAPI
// initiative's parser and validator, and prints every diagnostic it reports, one JSON object a
// line. Exits 1 if any is of error severity, the document did not parse or it refers outside
// itself, 2 if the parser itself failed. Nothing is fetched: a reference to a file or URL is
// answered with an empty schema and counted as an error, so the check works offline.
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main() {
  const text = fs.readFileSync(process.argv[2], 'utf8');
  const outside = [];
  // Tried before the parser's own readers of files and URLs, which are never reached.
  const refuse = (schema) => ({
    schema,
    order: 1,
    read: (uri) => {
      outside.push(String(uri));
      return '{}';
    },
  });
  const parser = new Parser({
    __unstable: { resolver: { cache: false, resolvers: ['file', 'http', 'https'].map(refuse) } },
  });
  const { document, diagnostics } = await parser.parse(text, { source: process.argv[2] });
  let errors = 0;
  for (const uri of outside) {
    errors += 1;
    console.log(JSON.stringify({ severity: 'Error', code: 'outside-reference', path: uri, message: 'a reference outside the document' }));
  }
  for (const d of diagnostics) {
    const severity = DiagnosticSeverity[d.severity] || String(d.severity);
    if (d.severity === DiagnosticSeverity.Error) {
      errors += 1;
    }
    console.log(JSON.stringify({ severity, code: d.code, path: d.path.join('/'), message: d.message }));
  }
  if (errors > 0 || !document) {
    console.log(`invalid: ${errors} error(s)${document ? '' : ', no document'}`);
    process.exit(1);
  }
  console.log('valid');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(2);
});
