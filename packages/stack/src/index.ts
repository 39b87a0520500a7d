export { ADMIN, startInfrastructure, startStack, type Stack, type StackOptions, type StackPorts } from './stack.js';
export { dataOwningServices, databaseName, REPO_ROOT, SERVICE_NAMES, ServiceProcess, type ServiceName } from './services.js';
