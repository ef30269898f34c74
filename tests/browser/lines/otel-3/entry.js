// The current OpenTelemetry JS release: 3.x has one SDK package for every platform (@opentelemetry/sdk-trace,
// whose TracerProvider replaces the web SDK's WebTracerProvider), and the OTLP/HTTP exporters 0.30x.
import * as api from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { install } from '../../page.js';

install({
  line: '3',
  api,
  ExportResultCode,
  resourceFromAttributes,
  // 3.x takes the exporter inside the options object.
  newBatchProcessor: (exporter, options) => new BatchSpanProcessor({ exporter, ...options }),
  newProvider: (options) => new TracerProvider(options),
  exporters: { json: JsonExporter, proto: ProtoExporter },
});
