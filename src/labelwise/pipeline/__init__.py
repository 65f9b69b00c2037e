"""The stages of `labelwise.fit`, run in one direction, each a function of plain values.

    prepare (`prepare.prepare`)   any source -> `Prepared`: the Task, fitted inputs, training and validation data
    train   (`training.train`)    `Prepared` -> `Trained`: network, class balance, head loss, Lightning training
    finish  (`finish.finish`)     `Trained` -> `labelwise.Classifier`: the head's calibration and policy on the
                                  validation rows, their metrics, and the frozen `labelwise.record.RunRecord`

`labelwise.fitting.fit` composes them and owns the run directory (staging, resume, the atomic swap).
"""
