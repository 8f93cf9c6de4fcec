// The marketplace tour (deploy/tour/marketplace.sh) with the generated TypeScript client.
//
// Against a running wrapd: the platform registers an instrument and its price, a manager
// publishes a strategy and its model, a distributor's agreement with it is accepted, the
// distributor opens a customer, receives cash, opens a wrap and contributes to it (with an
// Idempotency-Key, retried), then reads the wrap and the reconciliation back and checks the
// amounts. Exits non-zero on the first answer that is not the expected one.
//
// Usage (in sdk/typescript, after sdk/generate.sh): npx tsx tour.ts CLIENT_ID CLIENT_SECRET
// (the platform admin's, from `wrapd bootstrap`), with BASE (default http://127.0.0.1:8080).
import { randomUUID } from 'node:crypto';

import { type Client, createClient, createConfig } from '../out/typescript/client';
import {
  acceptAgreement,
  contribute,
  createClient as createApiClient,
  createCustomer,
  createInstrument,
  createStrategy,
  createTenant,
  createVersion,
  deposit,
  getCustomer,
  getWrap,
  issueToken,
  openWrap,
  proposeAgreement,
  reconciliation,
  uploadPrices,
} from '../out/typescript';

const BASE = process.env.BASE ?? 'http://127.0.0.1:8080';

function fail(message: string): never {
  console.error(`tour.ts: ${message}`);
  process.exit(1);
}

/** The parsed answer, after checking its status (the problem it answered otherwise). */
async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; request?: Request; response?: Response }>,
  status: number,
): Promise<T> {
  const { data, error, request, response } = await call;
  if (!response || response.status !== status || data === undefined) {
    fail(`expected ${status}, got ${response?.status}: ${JSON.stringify(error)}`);
  }
  console.log(`${response.status} ${request?.method} ${new URL(response.url).pathname}`);
  return data;
}

function same(what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    fail(`${what} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
}

/** A client of the API with the access token of these client credentials. */
async function token(clientId: string, secret: string): Promise<Client> {
  const anonymous = createClient(createConfig({ baseUrl: BASE }));
  const answer = await ok(
    issueToken({
      client: anonymous,
      body: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret },
    }),
    200,
  );
  same('token_type', answer.token_type, 'Bearer');
  return createClient(createConfig({ baseUrl: BASE, auth: answer.access_token }));
}

async function main(): Promise<void> {
  const [clientId, secret] = process.argv.slice(2);
  if (!clientId || !secret) fail('usage: tsx tour.ts CLIENT_ID CLIENT_SECRET');
  const run = randomUUID().slice(0, 8);
  const platform = await token(clientId, secret);

  // Tenants: a manager and a distributor, each with an admin client.
  async function tenant(kind: 'manager' | 'distributor', name: string): Promise<[string, Client]> {
    const created = await ok(
      createTenant({
        client: platform,
        body: { kind, name: `${name} ${run}`, contact_email: 'ops@example.jp' },
      }),
      201,
    );
    const creds = await ok(
      createApiClient({
        client: platform,
        path: { id: created.id },
        body: { name: 'admin', role: 'admin' },
      }),
      201,
    );
    return [created.id, await token(creds.client_id, creds.client_secret)];
  }
  const [managerId, manager] = await tenant('manager', 'Sakura Asset Management (TypeScript)');
  const [, bank] = await tenant('distributor', 'Minato Regional Bank (TypeScript)');

  // The platform: an instrument and today's price (today in Tokyo, the business date).
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Tokyo' }).format(new Date());
  const fund = `JP90TS${run.toUpperCase()}`;
  await ok(
    createInstrument({
      client: platform,
      body: {
        code: fund,
        name: 'Global Balanced Fund',
        kind: 'investment_trust',
        currency: 'JPY',
        unit_scale: 0,
        quote_unit: 10000,
        min_order_amount: '100',
        settlement_days: 2,
      },
    }),
    201,
  );
  const counts = await ok(
    uploadPrices({
      client: platform,
      body: { prices: [{ instrument: fund, date: today, price: '12345' }] },
    }),
    200,
  );
  same('prices inserted', counts.inserted, 1);

  // The manager: a strategy and its model.
  const strategy = await ok(
    createStrategy({
      client: manager,
      body: {
        code: 'BAL',
        name: 'Balanced',
        base_currency: 'JPY',
        risk_level: 3,
        expected_return_annual: '0.045',
        volatility_annual: '0.11',
        drift_band_kind: 'absolute',
        drift_band: '0.05',
        rebalance_calendar: 'quarterly',
        cooldown_days: 20,
        min_initial_investment: '100000',
      },
    }),
    201,
  );
  await ok(
    createVersion({
      client: manager,
      path: { id: strategy.id },
      body: {
        effective_date: today,
        cash_weight: '0.02',
        weights: [{ instrument: fund, weight: '0.98' }],
      },
    }),
    201,
  );

  // The distributor proposes an agreement (tiered fee, split 50/40/10); the manager accepts.
  const agreement = await ok(
    proposeAgreement({
      client: bank,
      body: {
        manager_tenant_id: managerId,
        strategy_id: strategy.id,
        terms: {
          effective_date: today,
          management_fee: {
            kind: 'tiered',
            tiers: [
              { up_to: '30000000', rate_annual: '0.011' },
              { up_to: null, rate_annual: '0.009' },
            ],
          },
          split: { channel: '0.5', manager: '0.4', platform: '0.1' },
          billing_period: 'quarterly',
        },
      },
    }),
    201,
  );
  const accepted = await ok(acceptAgreement({ client: manager, path: { id: agreement.id } }), 200);
  same('agreement status', accepted.status, 'active');

  // A customer, cash from the bank's settlement (a retry with the same key is the same entry).
  const customer = await ok(
    createCustomer({
      client: bank,
      body: {
        external_ref: 'C-0001',
        name: 'Hanako Yamada',
        date_of_birth: '1980-04-01',
        risk_tolerance: 3,
      },
    }),
    201,
  );
  const cash = {
    client: bank,
    path: { id: customer.id },
    headers: { 'Idempotency-Key': `dep-${run}` },
    body: { amount: '1000000', reference: 'SETTLE-0001' },
  };
  const deposited = await ok(deposit(cash), 201);
  const replayed = await ok(deposit(cash), 201);
  same("replayed deposit's entry", replayed.entry_id, deposited.entry_id);
  same('cash after the deposit', deposited.cash.available, '1000000');

  // A wrap with a goal, and a contribution to it (retried with its key: moved once).
  const wrap = await ok(
    openWrap({
      client: bank,
      path: { id: customer.id },
      body: {
        agreement_id: agreement.id,
        name: 'Retirement',
        goal: { name: 'Retire at 65', target_amount: '20000000', target_date: '2045-04-01' },
      },
    }),
    201,
  );
  const paidIn = {
    client: bank,
    path: { id: wrap.id },
    headers: { 'Idempotency-Key': `con-${run}` },
    body: { amount: '600000' },
  };
  const contributed = await ok(contribute(paidIn), 201);
  const again = await ok(contribute(paidIn), 201);
  same("replayed contribution's entry", again.entry_id, contributed.entry_id);
  same('wrap status', contributed.wrap_status, 'active');
  same('wrap cash', contributed.wrap_cash, '600000');
  same('customer cash available', contributed.customer_cash_available, '400000');

  // Read back: the wrap, the customer and the distributor's reconciliation.
  const view = await ok(getWrap({ client: bank, path: { id: wrap.id } }), 200);
  same('wrap goal', view.wrap.goal?.target_amount, '20000000');
  same('wrap cash', view.valuation.cash, '600000');
  same('wrap value', view.valuation.value, '600000');
  same('available to withdraw', view.available_to_withdraw, '600000');
  const held = await ok(getCustomer({ client: bank, path: { id: customer.id } }), 200);
  same(
    'customer cash',
    held.cash.map((c) => [c.currency, c.available]),
    [['JPY', '400000']],
  );
  const books = await ok(reconciliation({ client: bank }), 200);
  same('reconciled', books.reconciled, true);
  const jpy = books.assets.find((line) => line.asset === 'JPY');
  same(
    'JPY (customers, wraps, virtual total, omnibus, difference)',
    [jpy?.customers, jpy?.wraps, jpy?.virtual_total, jpy?.omnibus, jpy?.difference],
    ['400000', '600000', '1000000', '1000000', '0'],
  );
  const everyone = await ok(reconciliation({ client: platform }), 200);
  same('platform reconciled', everyone.reconciled, true);
  console.log('tour.ts: the marketplace tour passed');
}

await main();
