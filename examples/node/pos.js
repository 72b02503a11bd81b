#!/usr/bin/env node
// A POS talking to posbridge: Node.js, `net` only, no dependency (examples/README.md).
//   node pos.js [--yes] [SOCKET]   (SOCKET: else $POSBRIDGE_SOCKET, else /run/posbridge/api.sock)
//
// What a real POS must do, in the order a cashier meets it:
//   1. pay with its own request_id: a declined card is a final answer, sell again with a new id;
//   2. a pay whose outcome is unknown (unknown_result_error): never pay again; when the cashier
//      presses the button, ask get_result with the same request_id until the code is not 2;
//   3. the same request_id sent again: duplicate_request_error, answered by asking get_result;
//   4. refund half of the pay, passing the pay's `data` back as `primary_transaction`.
// --yes (or stdin not a terminal) answers the cashier's prompt. Every step prints one line:
//   STEP id=REQUEST_ID amount=N -> code=C RESULT
'use strict';

const net = require('net');
const readline = require('readline');

// The sim provider: an amount ending in 51 is declined; 91 answers unknown_result_error and
// settles on get_result.
const DECLINED = 1051;
const UNKNOWN = 2591;

/** One connection: one JSON line out, one JSON line back (answers come in request order, each
 * after its request's progress event lines, which are printed as they come). */
function connect(path) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    const waiting = [];
    let buffered = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const answer = JSON.parse(line);
        if (!('code' in answer)) {
          // A progress event: what the terminal or backend reports while the pay runs.
          console.log(`${'progress'.padEnd(10)} id=${answer.request_id} ${answer.stage}: ${answer.message}`);
          continue;
        }
        waiting.shift().resolve(answer);
      }
    });
    sock.on('close', () => {
      for (const w of waiting.splice(0)) w.reject(new Error('posbridge closed the connection'));
    });
    sock.once('error', reject);
    sock.once('connect', () => {
      resolve({
        ask(request) {
          return new Promise((res, rej) => {
            waiting.push({ resolve: res, reject: rej });
            sock.write(JSON.stringify(request) + '\n');
          });
        },
        close() {
          sock.end();
        },
      });
    });
  });
}

/** The answer in a few words: the data's status, or error_type and reason. */
function result(answer) {
  if (answer.code === 0) return `code=0 ${answer.data.status} amount=${answer.data.amount}`;
  return `code=${answer.code} ${answer.error_type} ${answer.reason}`;
}

function step(name, id, amount, answer) {
  console.log(`${name.padEnd(10)} id=${id} amount=${amount} -> ${result(answer)}`);
}

async function cashierPressesButton(yes) {
  const question = 'outcome unknown: press Enter to ask the terminal again';
  if (yes || !process.stdin.isTTY) {
    console.log(`${'cashier'.padEnd(10)} ${question} -> yes`);
    return;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  await new Promise((resolve) => rl.question(`${'cashier'.padEnd(10)} ${question} `, resolve));
  rl.close();
}

/** Asks until the outcome is known (code 2 means: not yet; ask again). */
async function getResult(pos, id, amount) {
  for (let i = 0; i < 120; i++) {
    const answer = await pos.ask({ action: 'get_result', request_id: id });
    if (answer.code !== 2 || answer.reason === 'manual_check') {
      step('get_result', id, amount, answer);
      return answer;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`${id}: the outcome is still unknown; check it before selling again`);
}

async function main(argv) {
  const yes = argv.includes('--yes');
  const args = argv.filter((a) => a !== '--yes');
  const path = args[0] || process.env.POSBRIDGE_SOCKET || '/run/posbridge/api.sock';
  const pos = await connect(path);
  const prefix = `pos-node-${Date.now()}`;

  // 1. A declined card: final; nothing charged.
  let pay = { action: 'pay', request_id: `${prefix}-1`, amount: DECLINED, progress: true };
  step('pay', pay.request_id, DECLINED, await pos.ask(pay));

  // 2. A pay whose outcome is unknown: ask get_result when the cashier says so.
  pay = {
    action: 'pay',
    request_id: `${prefix}-2`,
    amount: UNKNOWN,
    metadata: { till: '3' },
    progress: true,
  };
  let answer = await pos.ask(pay);
  step('pay', pay.request_id, UNKNOWN, answer);
  if (answer.code === 2) {
    await cashierPressesButton(yes);
    answer = await getResult(pos, pay.request_id, UNKNOWN);
  }
  if (answer.code !== 0) throw new Error('the pay was not approved');
  const paid = answer.data;

  // 3. The same request_id again (a POS that lost the answer and retried): never charged
  //    twice; duplicate_request_error says ask get_result.
  const again = await pos.ask(pay);
  step('pay', pay.request_id, UNKNOWN, again);
  if (again.code === 3) await getResult(pos, pay.request_id, UNKNOWN);

  // 4. Refund half, naming the pay by its data.
  const half = Math.floor(paid.amount / 2);
  const refund = { action: 'refund', request_id: `${prefix}-3`, amount: half, primary_transaction: paid };
  answer = await pos.ask(refund);
  step('refund', refund.request_id, half, answer);
  if (answer.code === 2) answer = await getResult(pos, refund.request_id, half);
  pos.close();
  return answer.code === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err.message); process.exitCode = 1; },
);
