'use strict';
// Pushes a fixed set of metrics with prom-client's Pushgateway (the version
// pinned in package.json/package-lock.json). Run by the Go tests in compat/
// (clients_test.go):
//
//   node push.js ACTION GATEWAY JOB GROUPINGS_JSON [METRICS] [gzip]
//
// ACTION is push (Pushgateway.push: PUT), pushAdd (POST) or delete (DELETE).
// GROUPINGS_JSON is a JSON object of grouping labels (prom-client
// percent-encodes them, so '/' travels as %2F). METRICS is a comma-separated
// subset of counter,gauge,histogram,summary (default: all four; "-" too).
// "gzip" sends the body with Content-Encoding: gzip, as prom-client supports.
// A failed request exits with status 1 and the error on stderr.

const { Registry, Counter, Gauge, Histogram, Summary, Pushgateway } = require('prom-client');

const ALL = ['counter', 'gauge', 'histogram', 'summary'];

// The same values on every call; the Go test knows them.
function registryWith(metrics) {
	const registry = new Registry();
	if (metrics.includes('counter')) {
		const c = new Counter({ name: 'compat_node_requests_total', help: 'Requests handled.', labelNames: ['code'], registers: [registry] });
		c.inc({ code: '200' }, 3);
		c.inc({ code: '500' }, 1);
	}
	if (metrics.includes('gauge')) {
		const g = new Gauge({ name: 'compat_node_temperature_celsius', help: 'Temperature.', registers: [registry] });
		g.set(21.5);
	}
	if (metrics.includes('histogram')) {
		const h = new Histogram({ name: 'compat_node_latency_seconds', help: 'Latency.', buckets: [0.3, 1], registers: [registry] });
		for (const v of [0.25, 0.5, 2]) h.observe(v);
	}
	if (metrics.includes('summary')) {
		// One observation: every quantile is exactly that value.
		const s = new Summary({ name: 'compat_node_payload_bytes', help: 'Payload size.', percentiles: [0.5, 0.9], registers: [registry] });
		s.observe(200);
	}
	return registry;
}

async function main(argv) {
	if (argv.length < 4 || argv.length > 6) {
		throw new Error('usage: push.js ACTION GATEWAY JOB GROUPINGS_JSON [METRICS] [gzip]');
	}
	const [action, gateway, jobName, groupingsJSON] = argv;
	const metrics = !argv[4] || argv[4] === '-' ? ALL : argv[4].split(',');
	for (const m of metrics) {
		if (!ALL.includes(m)) throw new Error(`unknown metric kind ${m}, want one of ${ALL}`);
	}
	const options = { timeout: 10000 };
	if (argv[5] === 'gzip') {
		options.headers = { 'Content-Encoding': 'gzip' };
	} else if (argv[5] !== undefined) {
		throw new Error(`unknown option ${argv[5]}, want gzip`);
	}
	const gw = new Pushgateway(gateway, options, registryWith(metrics));
	const params = { jobName, groupings: JSON.parse(groupingsJSON) };
	switch (action) {
		case 'push':
			return gw.push(params);
		case 'pushAdd':
			return gw.pushAdd(params);
		case 'delete':
			return gw.delete(params);
		default:
			throw new Error(`unknown action ${action}, want push, pushAdd or delete`);
	}
}

main(process.argv.slice(2)).then(
	() => process.exit(0),
	err => {
		console.error(err && err.message ? err.message : err);
		process.exit(1);
	},
);
