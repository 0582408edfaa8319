// Package samtemplate holds the test of the repository's AWS SAM template,
// template.yaml: it parses with goformation, every reference in it
// resolves, and the layer, the example function, the secret and the
// gateway's service are wired together as the README's "Deploy to AWS"
// describes. There is no code here, only the test.
package samtemplate
