// finetune-gitops: what the Function needs in a later environment's workspace (gitops.yaml environments: after the
// first), deployed by main.bicep into that workspace's resource group once per entry of `laterEnvironments`. The
// Function deploys and reads endpoints there (a release rolls the registry model out there), and reads its metrics;
// the workspace's job events reach the same on_job_event function as the first workspace's.
targetScope = 'resourceGroup'

@description('Name of the environment (as gitops.yaml names it): part of the resource names.')
param environmentName string

@description('Name of the existing Azure ML workspace of this environment (in this resource group).')
param workspaceName string

@description('The Function App\'s managed identity (its principalId).')
param principalId string

@description('The Function App\'s resource id: the event subscription delivers to its on_job_event function.')
param functionAppId string

@description('The Function\'s storage account (resource id) and container for undeliverable events.')
param deadLetterStorageId string
param deadLetterContainer string

@description('Create the event subscription (after the code is published: Event Grid validates the function).')
param deployEventSubscription bool = false

param prefix string = 'ftgitops'
param location string = resourceGroup().location

// Built-in role definition ids.
var roleAzureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
var roleMonitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource canUseWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, functionAppId, roleAzureMLDataScientist)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleAzureMLDataScientist)
  }
}

// A rollout's gradual traffic reads the endpoint's own metrics, in this environment as in the first.
resource canReadMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, functionAppId, roleMonitoringReader)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringReader)
  }
}

resource jobEvents 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = {
  name: '${prefix}-ml-events-${environmentName}'
  location: location
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

resource toJobEventFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = if (deployEventSubscription) {
  parent: jobEvents
  name: 'gitops-job-events'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/on_job_event'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
      ]
      advancedFilters: [
        { operatorType: 'IsNotNull', key: 'data.runTags.gitops_run' }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: deadLetterStorageId
        blobContainerName: deadLetterContainer
      }
    }
  }
}

output workspaceId string = workspace.id
