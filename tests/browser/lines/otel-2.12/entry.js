// OpenTelemetry JS 2.12 as a web app wires it: WebTracerProvider from the web SDK, the OTLP/HTTP exporters.
import * as api from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { install } from '../../page.js';

install({
  line: '2.12',
  api,
  ExportResultCode,
  resourceFromAttributes,
  newBatchProcessor: (exporter, options) => new BatchSpanProcessor(exporter, options),
  newProvider: (options) => new WebTracerProvider(options),
  exporters: { json: JsonExporter, proto: ProtoExporter },
});
