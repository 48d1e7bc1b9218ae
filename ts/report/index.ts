/** `lep/report`: the HTML report of a run. Re-exports only. */
export { writeReport, renderReport, formatTable, parseTrainLog, type ReportInput, type ReportRow, type TrainingRun, type TrainPoint } from './writeReport.js';
